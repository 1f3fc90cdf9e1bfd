"""Audio in: loading any common file, mono mix-down, resampling, and the measurements validation needs.

Long recordings are handled block by block (`AudioReader`, `resample_blocks`, `masked_blocks`, `QualityMeter`,
`SpeechSelection`), so that memory stays bounded whatever a recording's length.
"""

from __future__ import annotations

import contextlib
import heapq
import math
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from voiceclone.errors import UserError

FORMATS = "WAV, FLAC, OGG or MP3"
BLOCK_S = 10.0  # seconds read from a file at a time
DIGITAL_SILENCE_DBFS = -120.0  # a background below this is exact zeros (or nearly): there is no noise to measure


class AudioError(UserError):
    """A file that is not usable audio; the message names the file and what is wrong."""


# ------------------------------------------------------------------------------------------------- reading
class AudioReader:
    """An audio file read block by block as float32 mono at its own rate, checked as it is read.

    Use it as a context manager. Problems found before reading (missing, empty, unreadable, a WAV or MP3 that
    is cut short) raise `AudioError` on opening; problems found while decoding raise it from `blocks()`.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        _check_file(self.path)
        try:
            with quiet_stderr():  # libmpg123 prints its own warnings about damaged MP3s
                self._file = sf.SoundFile(str(self.path))
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            raise self._unreadable(exc) from None
        self.sample_rate = int(self._file.samplerate)
        self._is_mpeg = self._file.format == "MP3"
        self._mpeg = _mpeg_scan(self.path) if self._is_mpeg else None
        if _riff_truncated(self.path) or (self._mpeg is not None and not self._mpeg.complete):
            self._file.close()
            raise self._truncated()

    def __enter__(self) -> AudioReader:
        return self

    def __exit__(self, *exc) -> None:
        self._file.close()

    def blocks(self, seconds: float = BLOCK_S) -> Iterator[np.ndarray]:
        """The whole file as consecutive mono blocks of about `seconds` each."""
        buffer = np.empty((max(1, int(seconds * self.sample_rate)), self._file.channels), dtype=np.float32)
        total = 0
        while True:
            try:
                with quiet_stderr():
                    got = len(self._file.read(len(buffer), dtype="float32", always_2d=True, out=buffer))
            except (sf.LibsndfileError, RuntimeError, OSError) as exc:
                raise self._unreadable(exc) from None
            if got == 0:
                break
            block = buffer[:got].mean(axis=1, dtype=np.float32) if buffer.shape[1] > 1 else buffer[:got, 0].copy()
            if not np.isfinite(block).all():
                raise AudioError(f"{self.path}: the audio contains NaN or infinite samples (a damaged file?)")
            total += got
            yield block
        self._check_length(total)

    def _check_length(self, frames: int) -> None:
        """Compare what was decoded with what the file announced."""
        if frames == 0:
            raise AudioError(f"{self.path}: the file holds no audio samples")
        if not self._is_mpeg:
            if frames < self._file.frames:
                raise self._truncated()
            return
        # For an MP3 libsndfile's count is an estimate from the bitrate, and it stops reading there: an estimate
        # below the real length (a variable bitrate and no info header) would silently lose the rest.
        if self._mpeg is not None and frames < self._mpeg.samples - 3 * self._mpeg.samples_per_frame:
            decoded, announced = frames / self.sample_rate, self._mpeg.samples / self.sample_rate
            raise AudioError(
                f"{self.path}: only {decoded:.1f} s of its {announced:.1f} s can be decoded (a variable-bitrate MP3 "
                f"without an info header); convert it to WAV or FLAC"
            )

    def _unreadable(self, exc: Exception) -> AudioError:
        detail = str(exc).split(":")[-1].strip() or "unknown format"
        return AudioError(f"{self.path}: not a readable audio file ({detail}); use {FORMATS}")

    def _truncated(self) -> AudioError:
        return AudioError(f"{self.path}: the file is truncated (it ends before the audio its header announces)")


def load_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Read an audio file as float32 mono in [-1, 1] at its own sample rate."""
    with AudioReader(path) as reader:
        blocks = list(reader.blocks())
        return np.ascontiguousarray(np.concatenate(blocks)), reader.sample_rate


def _check_file(path: Path) -> None:
    if not path.exists():
        raise AudioError(f"{path}: file not found")
    if path.is_dir():
        raise AudioError(f"{path}: is a folder, not an audio file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: the file is empty")


def _riff_truncated(path: Path) -> bool:
    """A WAV whose data chunk announces more bytes than the file holds (libsndfile reads it silently)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return False
            size = path.stat().st_size
            while True:
                chunk = fh.read(8)
                if len(chunk) < 8:
                    return False
                cid, length = chunk[:4], struct.unpack("<I", chunk[4:])[0]
                if cid == b"data":
                    return length != 0xFFFFFFFF and fh.tell() + length > size
                fh.seek(length + (length & 1), os.SEEK_CUR)
    except OSError:
        return False


# -------------------------------------------------------------------------------------------- MPEG frames
# An MP3 is a chain of frames, each starting with a 4-byte header that gives its length; see
# http://www.mp3-tech.org/programmer/frame_header.html. Tables are indexed by the header's bit fields.
_MPEG_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}  # MPEG-1, 2, 2.5
_KBPS_V1 = {
    3: (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),  # layer I
    2: (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),  # layer II
    1: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),  # layer III
}
_KBPS_V2 = {
    3: (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    1: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_TRAILERS = (b"TAG", b"APETAGEX", b"LYRICS")  # tags that may follow the last frame
_RESYNC_BYTES = 65536  # how far to look for the next frame past junk (decoders give up sooner)


@dataclass(frozen=True)
class _Frame:
    length: int
    samples: int
    kind: tuple[int, int, int]  # version, layer, sample rate: the same in every frame of one stream
    mono: bool


@dataclass(frozen=True)
class _MpegScan:
    complete: bool  # the last frame is whole and the info header's frame count (if any) is reached
    samples: int  # samples the audio frames hold
    samples_per_frame: int


def _mpeg_frame(header: bytes) -> _Frame | None:
    """The frame a 4-byte header announces, or None if these bytes are not a usable frame header."""
    if len(header) < 4:
        return None
    h = int.from_bytes(header[:4], "big")
    version, layer, rate_index, kbps_index = (h >> 19) & 3, (h >> 17) & 3, (h >> 10) & 3, (h >> 12) & 15
    if h >> 21 != 0x7FF or version == 1 or layer == 0 or rate_index == 3 or kbps_index in (0, 15):
        return None  # no sync, reserved values, or free format (whose length no header says)
    rate = _MPEG_RATES[version][rate_index]
    kbps = (_KBPS_V1 if version == 3 else _KBPS_V2)[layer][kbps_index]
    padding = (h >> 9) & 1
    if layer == 3:  # layer I
        length, samples = (12000 * kbps // rate + padding) * 4, 384
    elif layer == 2 or version == 3:  # layer II, or MPEG-1 layer III
        length, samples = 144000 * kbps // rate + padding, 1152
    else:  # MPEG-2/2.5 layer III
        length, samples = 72000 * kbps // rate + padding, 576
    return _Frame(length, samples, (version, layer, rate), (h >> 6) & 3 == 3)


def _mpeg_scan(path: Path) -> _MpegScan | None:
    """Walk an MP3's frame headers: is its last frame whole, and how many samples do its frames hold?

    libsndfile's frame count for an MP3 without an info header is an estimate from the bitrate, so a shortfall
    against it proves nothing; a last frame that announces more bytes than the file has left does, and so does
    an info header (Xing, Info or VBRI) announcing more frames than there are.

    Returns:
        The scan, or None when no MPEG frames are found (nothing to say either way).
    """
    with open(path, "rb", buffering=1 << 16) as fh:
        size = os.fstat(fh.fileno()).st_size
        start = _skip_id3v2(fh)
        if start > size:  # cut inside the leading tag
            return _MpegScan(False, 0, 1152)
        end = _audio_end(fh, start, size)
        found = _first_frame(fh, start, end)
        if found is None:
            return None
        pos, first = found
        announced = _announced_frames(fh, pos, first)
        frames, complete = _walk_frames(fh, pos, end, first.kind)
        audio_frames = frames - 1 if announced is not None else frames  # the info frame holds no audio
        # Some encoders count the info frame itself: allow one frame of difference rather than accuse a file.
        if announced is not None and frames < announced:
            complete = False
        return _MpegScan(complete, max(0, audio_frames) * first.samples, first.samples)


def _walk_frames(fh, pos: int, end: int, kind: tuple) -> tuple[int, bool]:
    """Count whole frames from `pos`; False with the count if the stream ends inside a frame."""
    frames = 0
    while pos < end:
        fh.seek(pos)
        header = fh.read(4)
        frame = _mpeg_frame(header)
        if frame is None or frame.kind != kind:
            resync = _next_frame(fh, pos + 1, min(end, pos + _RESYNC_BYTES), kind, limit=end)
            if resync is None:  # what remains is not frames: a cut-off tag or header says the file was cut
                fh.seek(pos)
                rest = fh.read(min(end - pos, 16))
                return frames, not (rest.startswith(_TRAILERS) or (len(rest) < 4 and rest[:1] == b"\xff"))
            pos = resync
            continue
        if pos + frame.length > end:
            return frames, False
        pos += frame.length
        frames += 1
    return frames, True


def _first_frame(fh, start: int, end: int) -> tuple[int, _Frame] | None:
    """The first frame at or after `start` (encoders put little or nothing before it)."""
    pos = _next_frame(fh, start, min(end, start + _RESYNC_BYTES), None, limit=end)
    if pos is None:
        return None
    fh.seek(pos)
    frame = _mpeg_frame(fh.read(4))
    assert frame is not None
    return pos, frame


def _next_frame(fh, pos: int, end: int, kind: tuple | None, limit: int | None = None) -> int | None:
    """The next offset in [pos, end) holding a frame header that the following header confirms.

    A lone 0xFFE sync pattern occurs by chance inside audio data; two consecutive headers rarely do. `limit` is
    where the frames end (a frame that ends exactly there needs no following header).
    """
    limit = end if limit is None else limit
    fh.seek(pos)
    window = fh.read(max(0, end - pos))
    i = window.find(b"\xff")
    while i >= 0:
        frame = _mpeg_frame(window[i : i + 4])
        if frame is not None and (kind is None or frame.kind == kind):
            after = pos + i + frame.length
            if after == limit:
                return pos + i
            if after < limit:
                fh.seek(after)
                following = _mpeg_frame(fh.read(4))
                if following is not None and following.kind == frame.kind:
                    return pos + i
        i = window.find(b"\xff", i + 1)
    return None


def _announced_frames(fh, pos: int, frame: _Frame) -> int | None:
    """The frame count an info header (Xing/Info from LAME and most encoders, or VBRI) in the first frame gives."""
    fh.seek(pos)
    data = fh.read(min(frame.length, 256))
    side = (17 if frame.mono else 32) if frame.kind[0] == 3 else (9 if frame.mono else 17)
    for offset in (4 + side, 6 + side):  # after the side information, with or without a CRC
        if data[offset : offset + 4] in (b"Xing", b"Info") and len(data) >= offset + 12:
            flags = int.from_bytes(data[offset + 4 : offset + 8], "big")
            return int.from_bytes(data[offset + 8 : offset + 12], "big") if flags & 1 else None
    if data[36:40] == b"VBRI" and len(data) >= 54:
        return int.from_bytes(data[50:54], "big")
    return None


def _skip_id3v2(fh) -> int:
    """Where the audio starts after any ID3v2 tags (which may be chained)."""
    pos = 0
    while True:
        fh.seek(pos)
        head = fh.read(10)
        if len(head) < 10 or head[:3] != b"ID3":
            return pos
        size = (head[6] & 0x7F) << 21 | (head[7] & 0x7F) << 14 | (head[8] & 0x7F) << 7 | (head[9] & 0x7F)
        pos += 10 + size + (10 if head[5] & 0x10 else 0)


def _audio_end(fh, start: int, size: int) -> int:
    """Where the frames end: before any ID3v1, APEv2 and Lyrics3v2 tags at the end of the file."""
    end = size
    while True:
        if end - 128 >= start and _read_at(fh, end - 128, 3) == b"TAG":
            end -= 128
        elif end - 32 >= start and _read_at(fh, end - 32, 8) == b"APETAGEX":
            footer = _read_at(fh, end - 32, 32)
            tag_size, flags = struct.unpack("<I", footer[12:16])[0], struct.unpack("<I", footer[20:24])[0]
            new_end = end - tag_size - (32 if flags & 0x80000000 else 0)
            if not start <= new_end < end:
                return end
            end = new_end
        elif end - 15 >= start and _read_at(fh, end - 9, 9) == b"LYRICS200":
            digits = _read_at(fh, end - 15, 6)
            if not digits.isdigit() or not start <= end - 15 - int(digits) < end:
                return end
            end -= 15 + int(digits)
        else:
            return end


def _read_at(fh, pos: int, n: int) -> bytes:
    fh.seek(pos)
    return fh.read(n)


@contextlib.contextmanager
def quiet_stderr():
    """Silence C libraries writing to file descriptor 2 for the duration."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


# ---------------------------------------------------------------------------------------------- resampling
def resample(audio: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """High-quality resampling (soxr); a no-op at the same rate."""
    if sr_in == sr_out:
        return audio.astype(np.float32, copy=False)
    return soxr.resample(audio, sr_in, sr_out, quality="HQ").astype(np.float32, copy=False)


def resample_blocks(blocks: Iterator[np.ndarray], sr_in: int, sr_out: int) -> Iterator[np.ndarray]:
    """`resample` for a stream of mono blocks, with the filter's state carried across block edges."""
    if sr_in == sr_out:
        yield from blocks
        return
    stream = soxr.ResampleStream(sr_in, sr_out, 1, dtype="float32", quality="HQ")
    for block in blocks:
        out = stream.resample_chunk(block)
        if len(out):
            yield out
    tail = stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
    if len(tail):
        yield tail


def masked_blocks(
    blocks: Iterator[np.ndarray],
    sr: int,
    mask_fn: Callable[[np.ndarray, int], np.ndarray],
    core_s: float = 60.0,
    context_s: float = 2.0,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Apply a per-sample mask function (a VAD) to a long stream in pieces: (audio, mask) pairs in order.

    Each piece of `core_s` is masked together with `context_s` of audio on either side, and only the core's
    mask is kept, so that decisions near a piece's edges see the same surroundings as in one whole pass (a VAD
    needs a little audio to settle, and bridges short gaps). A stream shorter than one piece is masked whole.
    """
    core, context = int(core_s * sr), int(context_s * sr)
    buffer = np.zeros(0, dtype=np.float32)
    start = 0  # first sample of `buffer` not yet handed out; what comes before it is left context
    for block in blocks:
        buffer = np.concatenate([buffer, block])
        while len(buffer) - start >= core + context:
            lo = max(0, start - context)
            mask = mask_fn(buffer[lo : start + core + context], sr)
            yield buffer[start : start + core], mask[start - lo : start - lo + core]
            buffer, start = buffer[start + core - context :], context
    if len(buffer) > start:
        lo = max(0, start - context)
        yield buffer[start:], mask_fn(buffer[lo:], sr)[start - lo :]


# ------------------------------------------------------------------------------------------------- quality
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


# ---------------------------------------------------------------------------------------- keeping speech
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
