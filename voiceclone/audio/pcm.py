"""Float audio as 16-bit PCM and back: the one float <-> int16 conversion, and the one WAV writer (`wave`).

Every 16-bit sample this package makes comes from `to_int16`: the WAV and raw PCM of `speak`, the samples
handed to the encoders of its other formats, and the bot's audio frames. It scales by 32768, as libsndfile and
this package's decoders do when they read 16-bit audio back, rounds to the nearest step (libsndfile's own
conversion floors, a bias of half a step) and clips to the int16 range; NaN becomes silence.
"""

from __future__ import annotations

import wave
from typing import BinaryIO

import numpy as np

PCM16_BYTES = 2  # bytes per sample


def to_int16(audio: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] as int16: scaled by 32768, rounded, clipped (so 1.0 is 32767); NaN as 0."""
    scaled = np.rint(np.asarray(audio, dtype=np.float32) * np.float32(32768.0))
    np.clip(scaled, -32768.0, 32767.0, out=scaled)
    return np.nan_to_num(scaled, copy=False).astype(np.int16)


def pcm16(audio: np.ndarray) -> bytes:
    """Float samples as 16-bit little-endian PCM bytes (`to_int16`)."""
    return to_int16(audio).astype("<i2", copy=False).tobytes()


def from_pcm16(data: bytes) -> np.ndarray:
    """16-bit little-endian PCM bytes as float32 samples in [-1, 1) (divided by 32768, the inverse of `pcm16`)."""
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / np.float32(32768.0)


def wav_writer(file: BinaryIO, sample_rate: int) -> wave.Wave_write:
    """A 16-bit mono WAV writer on an open binary file, its header written now.

    Feed it `to_int16` samples with `writeframesraw`; `close()` patches the header's sizes (the file must be
    seekable) and leaves the file open.
    """
    writer = wave.open(file, "wb")  # noqa: SIM115 (the caller closes it when the file is complete)
    writer.setnchannels(1)
    writer.setsampwidth(PCM16_BYTES)
    writer.setframerate(sample_rate)
    writer.writeframesraw(b"")  # the header, with sizes of 0 until close
    return writer
