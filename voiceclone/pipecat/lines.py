"""Fixed lines (the greeting, short apologies) rendered once per voice and converter, kept on disk, played at once.

A line is keyed by everything that changes how it sounds: its text, the enrolled voice's data (a fingerprint of
the embedding or profile), the base engine's identity, the converter (engine, version, checkpoint), the base
voice's own data, tau and the sample rate. A changed voice or converter gives a new key, so a stale line is
never played; it is simply rendered again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from loguru import logger

from voiceclone.cache import cache_dir
from voiceclone.files import npy_bytes, write_atomic

FORMAT = 1  # bump when what a cached line holds changes
DID_NOT_CATCH = "Sorry, I didn't catch that."
LOST_TURN = "Sorry, I missed that. Could you say it again?"


def normalise(text: str) -> str:
    """The form a line is looked up by (Pipecat may add or strip spaces around a sentence)."""
    return " ".join(text.split())


def data_fingerprint(data) -> str:
    """A stable fingerprint of a voice's converter data: an embedding (array) or a profile (`to_json`).

    Args:
        data: The data `Conversion.voice_data` or `base_data` returned.

    Returns:
        A hex digest that changes whenever the data does.
    """
    digest = hashlib.sha256()
    if hasattr(data, "to_json"):
        digest.update(json.dumps(data.to_json(), sort_keys=True, default=_plain).encode())
    else:
        array = np.ascontiguousarray(np.asarray(data))
        digest.update(f"{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:32]


def converter_identity(conversion) -> dict:
    """What identifies a converter: engine, version key, label, and the checkpoint's hash when it has one."""
    record = conversion.record().as_json() if hasattr(conversion, "record") else {}  # a `ConverterEntry`
    return {"engine": conversion.engine, "key": conversion.key, "label": conversion.label, **record}


def line_key(voice, text: str, tau: float | None = None) -> str:
    """The cache key of `text` spoken by `voice` (a `ClonedVoice`) at `tau` (None: the voice's)."""
    what = {
        "format": FORMAT,
        "text": normalise(text),
        "voice": data_fingerprint(voice.target_se),
        "base": data_fingerprint(voice.source_se),
        "engine": voice.engine.identity,
        "converter": converter_identity(voice.converter),
        "tau": round(float(voice.tau if tau is None else tau), 6),
        "rate": voice.sample_rate,
    }
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=_plain).encode()).hexdigest()[:40]


class FixedLines:
    """The bot's fixed lines and their rendered audio, in memory and in `cache_dir()/lines`."""

    def __init__(self, texts: Iterable[str | None], folder: Path | None = None):
        """Args: texts: the lines (None and blanks are ignored); folder: where they are kept (tests)."""
        # In the order given, which is the order they are needed in: the greeting first.
        self.texts = list(dict.fromkeys(normalise(t) for t in texts if t and t.strip()))
        self.folder = folder if folder is not None else cache_dir() / "lines"
        self._memory: dict[str, np.ndarray] = {}

    def wants(self, text: str) -> bool:
        """Whether `text` is one of the fixed lines."""
        return normalise(text) in self.texts

    def load(self, voice, text: str, tau: float | None = None) -> np.ndarray | None:
        """The rendered line for this voice (float32 at `voice.sample_rate`), or None if it is not rendered yet."""
        key = line_key(voice, text, tau)
        if key in self._memory:
            return self._memory[key]
        path = self.folder / f"{key}.npy"
        if not path.is_file():
            return None
        try:
            audio = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            logger.warning("ignoring a damaged cached line: {}", path)
            return None
        if audio.dtype != np.float32 or audio.ndim != 1 or not len(audio) or not np.isfinite(audio).all():
            logger.warning("ignoring a damaged cached line: {}", path)
            return None
        self._memory[key] = audio
        return audio

    def store(self, voice, text: str, audio: np.ndarray, tau: float | None = None) -> None:
        """Keep a rendered line (a read-only cache only costs rendering it again next time)."""
        key = line_key(voice, text, tau)
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        self._memory[key] = audio
        try:
            write_atomic(self.folder / f"{key}.npy", npy_bytes(audio))
        except OSError as exc:
            logger.warning("cannot cache a fixed line in {} ({})", self.folder, exc.strerror)

    def render_missing(self, voice, tau: float | None = None, chunk_frames: int | None = None) -> int:
        """Render (blocking) every line this voice has no audio for yet.

        Args:
            voice: The `ClonedVoice` to render with.
            tau: Conversion temperature (None: the voice's).
            chunk_frames: Conversion chunk size, as the service uses.

        Returns:
            How many lines were rendered.
        """
        return sum(self.render(voice, text, tau, chunk_frames) for text in self.texts)

    def render(self, voice, text: str, tau: float | None = None, chunk_frames: int | None = None) -> bool:
        """Render (blocking) one line if this voice has no audio for it yet; whether it was rendered now."""
        if self.load(voice, text, tau) is not None:
            return False
        audio = np.concatenate(list(voice.speak(text, tau=tau, chunk_frames=chunk_frames)))
        self.store(voice, text, audio, tau)
        return True


def _plain(value):
    """JSON for numpy values inside a profile."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot fingerprint {type(value).__name__}")
