"""One voice folder as stored: the voice read from it (`Voice`), or what is wrong with it (`VoiceEntry`,
`inspect`). Nothing here takes the library's lock or writes: that is `store.VoiceLibrary`'s."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from loguru import logger

from voiceclone.voices.errors import Damage, damaged_error
from voiceclone.voices.names import (
    META_FILE,
    SPEECH_FILE,
    embedding_file,
    is_voice_file,
    profile_file,
)
from voiceclone.voices.record import VoiceRecord, parse_embedding, parse_profile, read_small
from voiceclone.voices.speech_file import check_speech, decode_speech


@dataclass
class Voice:
    """An enrolled voice as stored: its voice.json as `record`. Reading a damaged file raises `VoiceError`
    saying what to do."""

    name: str
    folder: Path
    record: VoiceRecord

    def embedding(self, version: str) -> np.ndarray | None:
        """The stored `[1, N, 1]` embedding for a converter version, if any (a damaged one counts as none)."""
        path = self.folder / embedding_file(version)
        if not path.is_file():
            return None
        return self._derived(lambda: parse_embedding(read_small(path), path.name))

    def embedding_checkpoint(self, version: str) -> str | None:
        """SHA-256 of the checkpoint that made the stored embedding of `version`."""
        return self.record.embedding_checkpoint(version)

    def profile(self, version: str) -> dict | None:
        """The stored profile for a matcher version, if any (a damaged one counts as none)."""
        path = self.folder / profile_file(version)
        if not path.is_file():
            return None
        return self._derived(lambda: parse_profile(read_small(path), path.name))

    def speech(self) -> tuple[np.ndarray, int]:
        """The processed speech kept for re-embedding (mono float32) and its sample rate."""
        path = self.folder / SPEECH_FILE
        if not path.is_file():
            raise damaged_error(self.name, self.folder.parent, f"{SPEECH_FILE} is missing")
        return self._read(lambda: decode_speech(str(path)))

    def _derived(self, read):
        """A file made from the kept speech (an embedding, a profile): damaged, it is as good as missing, and the
        converter makes it again from the speech (removing the voice for it would lose its consent record)."""
        try:
            return read()
        except Damage as damage:
            logger.warning(f"voice {self.name!r}: {damage}; making it again from the kept speech")
            return None

    def _read(self, read):
        try:
            return read()
        except Damage as damage:
            raise damaged_error(self.name, self.folder.parent, str(damage)) from None


@dataclass
class VoiceEntry:
    """A voice folder as found: the voice when it is usable, else what is wrong with it."""

    name: str
    folder: Path
    voice: Voice | None
    problem: str | None

    @property
    def ok(self) -> bool:
        """Whether the voice is usable."""
        return self.problem is None


def is_voice_folder(folder: Path) -> bool:
    """A folder holding any of a voice's files (a damaged voice may lack some)."""
    try:
        return folder.is_dir() and any(is_voice_file(child.name) for child in folder.iterdir())
    except OSError:
        return False


def inspect(name: str, folder: Path) -> VoiceEntry:
    """A voice folder's health: its description and its speech (only at its start and end). Embeddings and
    profiles are not its health: made from the speech, a damaged one is made again when it is needed."""
    try:
        record = VoiceRecord.parse(read_small(folder / META_FILE))
        check_speech(folder / SPEECH_FILE)
    except Damage as damage:
        return VoiceEntry(name, folder, None, str(damage))
    except OSError as exc:
        return VoiceEntry(name, folder, None, f"its folder cannot be read ({exc.strerror})")
    return VoiceEntry(name, folder, Voice(name, folder, record), None)
