"""Audio in: any common file read as float32 mono, block by block, and refused in one line when it is not
whole, usable audio.

A long recording is read block by block (`AudioReader`), so that memory stays bounded whatever its length.
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf

from voiceclone.audio.mp3 import mpeg_scan
from voiceclone.errors import UserError

FORMATS = "WAV, FLAC, OGG or MP3"
BLOCK_S = 10.0  # seconds read from a file at a time


class AudioError(UserError):
    """A file that is not usable audio; the message names the file and what is wrong."""


class AudioReader:
    """An audio file read block by block as float32 mono at its own rate, checked as it is read.

    Use it as a context manager. Problems found before reading (missing, empty, unreadable, a WAV or MP3 that
    is cut short) raise `AudioError` on opening; problems found while decoding raise it from `blocks()`.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        check_audio_file(self.path)
        try:
            with quiet_stderr():  # libmpg123 prints its own warnings about damaged MP3s
                self._file = sf.SoundFile(str(self.path))
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            raise self._unreadable(exc) from None
        self.sample_rate = int(self._file.samplerate)
        self._is_mpeg = self._file.format == "MP3"
        self._mpeg = mpeg_scan(self.path) if self._is_mpeg else None
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
                if "lost sync" in str(exc):  # what libsndfile says of a FLAC cut short (or damaged) mid-stream
                    lost = f"{self.path}: the file is truncated or damaged (the FLAC decoder lost sync)"
                    raise AudioError(lost) from None
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
        if "does not exist or is not a regular file" in detail and self.path.is_file():
            # libsndfile's words when its MP3 decoder finds no frames in a file that is there: say what it means
            detail = "no audio frames found: damaged, or not the format its name says"
        return AudioError(f"{self.path}: not a readable audio file ({detail}); use {FORMATS}")

    def _truncated(self) -> AudioError:
        return AudioError(f"{self.path}: the file is truncated (it ends before the audio its header announces)")


def load_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Read an audio file as float32 mono in [-1, 1] at its own sample rate."""
    with AudioReader(path) as reader:
        blocks = list(reader.blocks())
        return np.ascontiguousarray(np.concatenate(blocks)), reader.sample_rate


def check_audio_file(path: Path) -> None:
    """An AudioError for a path that cannot hold audio: missing, a folder, or empty."""
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
