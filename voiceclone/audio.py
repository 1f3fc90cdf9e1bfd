"""Audio in: loading any common file, mono mix-down, resampling, and the measurements validation needs."""

from __future__ import annotations

import contextlib
import math
import os
import struct
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from .errors import UserError

FORMATS = "WAV, FLAC, OGG or MP3"


class AudioError(UserError):
    """A file that is not usable audio; the message names the file and what is wrong."""


def load_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Read an audio file as float32 mono in [-1, 1] at its own sample rate."""
    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: file not found")
    if path.is_dir():
        raise AudioError(f"{path}: is a folder, not an audio file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: the file is empty")
    try:
        with quiet_stderr():  # libmpg123 prints its own warnings about damaged MP3s
            info = sf.info(str(path))
            data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        detail = str(exc).split(":")[-1].strip() or "unknown format"
        raise AudioError(f"{path}: not a readable audio file ({detail}); use {FORMATS}") from None
    if data.shape[0] == 0:
        raise AudioError(f"{path}: the file holds no audio samples")
    if data.shape[0] < info.frames or _riff_truncated(path):
        raise AudioError(f"{path}: the file is truncated (it ends before the audio its header announces)")
    mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    if not np.isfinite(mono).all():
        raise AudioError(f"{path}: the audio contains NaN or infinite samples (a damaged file?)")
    return np.ascontiguousarray(mono), int(sr)


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


def resample(audio: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """High-quality resampling (soxr); a no-op at the same rate."""
    if sr_in == sr_out:
        return audio.astype(np.float32, copy=False)
    return soxr.resample(audio, sr_in, sr_out, quality="HQ").astype(np.float32, copy=False)


def dbfs(rms: float) -> float:
    """Level in dB relative to full scale (a full-scale sine is about -3 dBFS)."""
    return 20.0 * math.log10(max(rms, 1e-10))


@dataclass
class Quality:
    """What a user should know about a recording before it becomes a voice."""

    duration_s: float
    speech_s: float
    clipped_fraction: float
    speech_level_dbfs: float
    noise_level_dbfs: float
    snr_db: float

    def warnings(self) -> list[str]:
        """Problems that make a clone worse but not impossible."""
        out = []
        if self.clipped_fraction > 0.001:
            out.append(f"clipped: {self.clipped_fraction:.1%} of samples are at full scale; record at a lower gain")
        if self.speech_level_dbfs < -35:
            out.append(f"very quiet: speech at {self.speech_level_dbfs:.0f} dBFS; move closer or raise the gain")
        if self.snr_db < 15:
            out.append(f"noisy: speech only {self.snr_db:.0f} dB above the background; record somewhere quieter")
        if self.duration_s > 0 and self.speech_s / self.duration_s < 0.3:
            out.append(f"mostly silent: speech in {self.speech_s / self.duration_s:.0%} of the recording")
        return out

    def as_dict(self) -> dict:
        """Rounded values for voice.json."""
        return {k: round(v, 4) for k, v in asdict(self).items()}


def measure(audio: np.ndarray, sr: int, speech: np.ndarray) -> Quality:
    """Measure a recording given a per-sample speech mask (True where someone speaks)."""
    frame = max(1, sr // 50)  # 20 ms frames for the noise floor
    n = len(audio) // frame * frame
    frames_rms = np.sqrt(np.mean(audio[:n].reshape(-1, frame).astype(np.float64) ** 2, axis=1)) if n else np.zeros(1)
    speech_rms = float(np.sqrt(np.mean(audio[speech].astype(np.float64) ** 2))) if speech.any() else 0.0
    silence = ~speech
    if silence.sum() >= frame * 5:
        noise_rms = float(np.sqrt(np.mean(audio[silence].astype(np.float64) ** 2)))
    else:  # little or no pause: the quietest frames stand in for the background
        noise_rms = float(np.percentile(frames_rms, 10))
    return Quality(
        duration_s=len(audio) / sr,
        speech_s=float(speech.sum()) / sr,
        clipped_fraction=float(np.mean(np.abs(audio) >= 0.999)),
        speech_level_dbfs=dbfs(speech_rms),
        noise_level_dbfs=dbfs(noise_rms),
        snr_db=dbfs(speech_rms) - dbfs(noise_rms),
    )
