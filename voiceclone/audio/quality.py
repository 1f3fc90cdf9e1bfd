"""What a recording is worth as a voice: its levels, clipping and background (`Quality`), and the cleanest
speech kept when there is more than a voice needs (`SpeechSelection`).

Both are fed block by block (`QualityMeter`, `SpeechSelection`), so that memory stays bounded whatever a
recording's length.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import asdict, dataclass

import numpy as np

DIGITAL_SILENCE_DBFS = -120.0  # a background below this is exact zeros (or nearly): there is no noise to measure


def dbfs(rms: float) -> float:
    """Level in dB relative to full scale (a full-scale sine is about -3 dBFS)."""
    return 20.0 * math.log10(max(rms, 1e-10))


@dataclass
class Quality:
    """What a user should know about a recording before it becomes a voice.

    When the background is digital silence (exact zeros between the words, as in synthesised or edited audio)
    there is no noise to measure: `digital_silence` is set, `noise_floor_dbfs` is None, and `noise_level_dbfs`
    and `snr_db` keep their old meaning (floor of -200 dBFS) only for callers that predate the flag.
    """

    duration_s: float
    speech_s: float
    clipped_fraction: float
    speech_level_dbfs: float
    noise_level_dbfs: float
    snr_db: float
    digital_silence: bool = False

    @property
    def noise_floor_dbfs(self) -> float | None:
        """The background level, or None when there is no measurable background."""
        return None if self.digital_silence else self.noise_level_dbfs

    def background(self) -> str:
        """The background as a user should read it, e.g. "-62 dBFS, 40 dB below speech"."""
        if self.digital_silence:
            return "silent (digital silence)"
        return f"{self.noise_level_dbfs:.0f} dBFS, {self.snr_db:.0f} dB below speech"

    def warnings(self) -> list[str]:
        """Problems that make a clone worse but not impossible."""
        out = []
        if self.clipped_fraction > 0.001:
            out.append(f"clipped: {self.clipped_fraction:.1%} of samples are at full scale; record at a lower gain")
        if self.speech_level_dbfs < -35:
            out.append(f"very quiet: speech at {self.speech_level_dbfs:.0f} dBFS; move closer or raise the gain")
        if not self.digital_silence and self.snr_db < 15:
            out.append(f"noisy: speech only {self.snr_db:.0f} dB above the background; record somewhere quieter")
        if self.duration_s > 0 and self.speech_s / self.duration_s < 0.3:
            out.append(f"mostly silent: speech in {self.speech_s / self.duration_s:.0%} of the recording")
        return out

    def as_dict(self) -> dict:
        """Rounded values for voice.json; no background figures (null) when there is no background."""
        out: dict = {k: v if isinstance(v, bool) else round(v, 4) for k, v in asdict(self).items()}
        if self.digital_silence:
            out["noise_level_dbfs"] = out["snr_db"] = None
        return out


class QualityMeter:
    """`measure`, fed block by block: the same figures without holding the whole recording."""

    def __init__(self, sr: int):
        self.sr = sr
        self._frame = max(1, sr // 50)  # 20 ms frames for the noise floor
        self._samples = self._speech = self._clipped = 0
        self._speech_energy = self._silence_energy = 0.0
        self._frame_rms: list[np.ndarray] = []
        self._rest = np.zeros(0, dtype=np.float64)  # samples waiting to complete a frame

    def add(self, audio: np.ndarray, speech: np.ndarray) -> None:
        """Take the next block and its speech mask (True where someone speaks)."""
        squares = audio.astype(np.float64) ** 2
        self._samples += len(audio)
        self._speech += int(np.count_nonzero(speech))
        self._clipped += int(np.count_nonzero(np.abs(audio) >= 0.999))
        self._speech_energy += float(squares[speech].sum())
        self._silence_energy += float(squares[~speech].sum())
        joined = np.concatenate([self._rest, squares])
        n = len(joined) // self._frame * self._frame
        self._frame_rms.append(np.sqrt(joined[:n].reshape(-1, self._frame).mean(axis=1)))
        self._rest = joined[n:]

    def quality(self) -> Quality:
        """The measurements of everything added so far."""
        silence = self._samples - self._speech
        speech_rms = math.sqrt(self._speech_energy / self._speech) if self._speech else 0.0
        if silence >= self._frame * 5:
            noise_rms = math.sqrt(self._silence_energy / silence)
        else:  # little or no pause: the quietest frames stand in for the background
            frames = np.concatenate(self._frame_rms) if self._frame_rms else np.zeros(0)
            noise_rms = float(np.percentile(frames, 10)) if len(frames) else 0.0
        return Quality(
            duration_s=self._samples / self.sr,
            speech_s=self._speech / self.sr,
            clipped_fraction=self._clipped / self._samples if self._samples else 0.0,
            speech_level_dbfs=dbfs(speech_rms),
            noise_level_dbfs=dbfs(noise_rms),
            snr_db=dbfs(speech_rms) - dbfs(noise_rms),
            digital_silence=dbfs(noise_rms) < DIGITAL_SILENCE_DBFS,
        )


def measure(audio: np.ndarray, sr: int, speech: np.ndarray) -> Quality:
    """Measure a recording given a per-sample speech mask (True where someone speaks)."""
    meter = QualityMeter(sr)
    meter.add(audio, speech)
    return meter.quality()


def speech_score(piece: np.ndarray, sr: int) -> float:
    """How clean a piece of speech is, for choosing which to keep: higher is better.

    Clean speech swings widely between syllables and the short dips around them, while background noise fills
    the dips; so the score is the spread between loud and quiet 20 ms frames (capped at 40 dB, beyond which
    nothing is audible), minus a heavy penalty for clipped samples.
    """
    frame = max(1, sr // 50)
    n = len(piece) // frame * frame
    if n == 0:
        return -math.inf
    rms = np.sqrt((piece[:n].astype(np.float64) ** 2).reshape(-1, frame).mean(axis=1))
    levels = 20.0 * np.log10(np.maximum(rms, 1e-10))
    spread = float(np.percentile(levels, 90) - np.percentile(levels, 10))
    clipped = float(np.mean(np.abs(piece) >= 0.999))
    return min(spread, 40.0) - 1000.0 * clipped


class SpeechSelection:
    """At most `limit_s` seconds of speech, the best pieces of `piece_s` by `speech_score`, kept in their order.

    Speech is fed as it is found; only the pieces still in the running are held, so memory is bounded by the
    limit whatever the amount of speech. Below the limit everything is kept, unchanged.
    """

    def __init__(self, sr: int, limit_s: float, piece_s: float):
        self.sr = sr
        self._piece = max(1, int(piece_s * sr))
        self._slots = max(1, int(limit_s // piece_s))
        self._kept: list[tuple[float, int, np.ndarray]] = []  # a min-heap: the worst piece is dropped first
        self._pending: list[np.ndarray] = []
        self._pending_n = 0
        self._count = 0

    def add(self, speech: np.ndarray) -> None:
        """Take the next stretch of speech (any length)."""
        self._pending.append(speech)
        self._pending_n += len(speech)
        if self._pending_n >= self._piece:
            joined = np.concatenate(self._pending)
            cut = len(joined) // self._piece * self._piece
            for i in range(0, cut, self._piece):
                self._offer(joined[i : i + self._piece].copy())
            self._pending, self._pending_n = [joined[cut:].copy()], len(joined) - cut

    def speech(self) -> np.ndarray:
        """The kept speech, in the order it came."""
        if self._pending_n:
            self._offer(np.concatenate(self._pending))
            self._pending, self._pending_n = [], 0
        pieces = [piece for _, _, piece in sorted(self._kept, key=lambda kept: -kept[1])]
        return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)

    def _offer(self, piece: np.ndarray) -> None:
        # Ties go to the earlier piece: the heap orders by (score, -arrival), so a later equal piece is dropped.
        heapq.heappush(self._kept, (speech_score(piece, self.sr), -self._count, piece))
        self._count += 1
        if len(self._kept) > self._slots:
            heapq.heappop(self._kept)
