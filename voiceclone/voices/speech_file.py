"""The speech a voice keeps (speech.flac, 24-bit FLAC): encoded, decoded whole, and checked cheaply."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import soundfile as sf

from voiceclone.voices.errors import Damage
from voiceclone.voices.names import SPEECH_FILE


def flac_bytes(speech: np.ndarray, sr: int) -> bytes:
    """The speech as speech.flac holds it.

    Encoded in memory and then written like any other file: libsndfile writing to disk itself reports a
    full disk only as "System error."."""
    buf = io.BytesIO()
    sf.write(buf, speech, sr, format="FLAC", subtype="PCM_24")
    return buf.getvalue()


def check_speech(path: Path) -> None:
    """A cheap check of speech.flac: its header, and its last samples decode (a cut FLAC fails there)."""
    if not path.is_file():
        raise Damage(f"{SPEECH_FILE} is missing")
    try:
        with sf.SoundFile(str(path)) as f:
            if f.format != "FLAC" or f.frames <= 0:
                raise Damage(f"{SPEECH_FILE} holds no FLAC audio")
            f.seek(max(0, f.frames - 4096))
            if len(f.read(4096, dtype="float32")) < min(f.frames, 4096):
                raise Damage(f"{SPEECH_FILE} ends before the audio it announces")
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise Damage(f"{SPEECH_FILE} cannot be decoded ({_detail(exc)})") from None


def decode_speech(source) -> tuple[np.ndarray, int]:
    """All of speech.flac (a path or a file object) as mono float32, and its rate."""
    try:
        with sf.SoundFile(source) as f:
            expected, sr, fmt = f.frames, f.samplerate, f.format
            data = f.read(dtype="float32")
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise Damage(f"{SPEECH_FILE} cannot be decoded ({_detail(exc)})") from None
    if fmt != "FLAC" or len(data) == 0:
        raise Damage(f"{SPEECH_FILE} holds no FLAC audio")
    if len(data) < expected:
        raise Damage(f"{SPEECH_FILE} ends before the audio it announces")
    return (data.mean(axis=1, dtype=np.float32) if data.ndim > 1 else data), int(sr)


def _detail(exc: Exception) -> str:
    return str(exc).split(":")[-1].strip().rstrip(".") or type(exc).__name__
