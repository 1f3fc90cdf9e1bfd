"""The small files of a voice folder, read and written here alone: voice.json as a typed record (`VoiceRecord`),
and the checks of an embedding (`.npy`) and a profile (`.json`).

voice.json is rewritten byte for byte as it was read but for what changed: its keys keep their order, keys
this version does not know are kept (`model_extra`), and a key a voice lacks is not added unless it is set.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError

from voiceclone.voices.errors import Damage
from voiceclone.voices.names import MAX_SMALL_FILE, META_FILE, embedding_file, profile_file


class _Layout(BaseModel):
    """A part of voice.json: typed fields, and whatever else it holds kept as it is."""

    model_config = ConfigDict(extra="allow", frozen=True)

    def as_json(self) -> dict:
        """The JSON object, with only the keys read or set."""
        return self.model_dump(exclude_unset=True)


class EmbeddingEntry(_Layout):
    """voice.json "embeddings" -> version: a converter version's embedding and the checkpoint that made it."""

    file: str | None = None
    checkpoint_sha256: str | None = None

    @classmethod
    def of(cls, version: str, checkpoint_sha256: str | None) -> EmbeddingEntry:
        """The entry of `version`'s embedding, made by the checkpoint with that SHA-256 (None: unknown)."""
        return cls(file=embedding_file(version), checkpoint_sha256=checkpoint_sha256)


class ProfileEntry(_Layout):
    """voice.json "profiles" -> version: a matcher version's profile."""

    file: str | None = None

    @classmethod
    def of(cls, version: str) -> ProfileEntry:
        """The entry of `version`'s profile."""
        return cls(file=profile_file(version))


class ConverterEntry(_Layout):
    """voice.json "converter": the converter the voice was enrolled with."""

    engine: str | None = None  # absent in voices enrolled before the matcher
    version: str | None = None
    checkpoint_sha256: str | None = None


class SourceFile(_Layout):
    """voice.json "sources": one recording the voice was made from."""

    file: str | None = None
    sha256: str | None = None
    duration_s: int | float | None = None
    sample_rate: int | None = None
    speech_s: int | float | None = None


class VoiceRecord(_Layout):
    """voice.json: what a voice is (name, when made, from what, how good, with whose consent) and what it holds.

    The fields are in the order enrollment writes them. `consent` is the record the consent policy reads (see
    `voiceclone.responsible.consent.policy`), `quality` the quality report (`Quality.as_dict`).
    """

    name: str | None = None
    created: str | None = None
    sources: list[SourceFile] = []
    speech_seconds: int | float | None = None  # what is kept (at most 5 min)
    sample_rate: int | None = None
    quality: dict[str, Any] | None = None
    warnings: list[str] = []
    converter: ConverterEntry | None = None
    embeddings: dict[str, EmbeddingEntry] = {}
    consent: dict[str, Any] | str | None = None
    voiceclone_version: str | None = None
    profiles: dict[str, ProfileEntry] = {}
    _order: tuple[str, ...] = PrivateAttr(default=())  # the keys as read, to write them back in that order

    @classmethod
    def parse(cls, data: bytes) -> VoiceRecord:
        """voice.json's bytes as a record; `Damage` if they are not one."""
        try:
            raw = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise Damage(f"{META_FILE} is not valid JSON") from None
        if not isinstance(raw, dict):
            raise Damage(f"{META_FILE} is not a voice description")
        try:
            record = cls.model_validate(raw, strict=True)
        except ValidationError:
            raise Damage(f"{META_FILE} is not a voice description") from None
        record._order = tuple(raw)
        return record

    def as_json(self) -> dict:
        """All of voice.json, in its order, unknown keys included."""
        data = super().as_json()
        ordered = {key: data.pop(key) for key in self._order if key in data}
        return ordered | data

    def to_bytes(self) -> bytes:
        """voice.json as written."""
        return _json_bytes(self.as_json())

    def content(self) -> dict:
        """What identifies a voice's content: everything but the files made from it later."""
        return {k: v for k, v in self.as_json().items() if k not in ("embeddings", "profiles")}

    def renamed(self, name: str) -> VoiceRecord:
        """The record under another name."""
        return self.model_copy(update={"name": name})

    def with_embedding(self, version: str, checkpoint_sha256: str | None) -> VoiceRecord:
        """The record with `version`'s embedding listed (made by the checkpoint with that SHA-256)."""
        entry = EmbeddingEntry.of(version, checkpoint_sha256)
        return self.model_copy(update={"embeddings": {**self.embeddings, version: entry}})

    def with_profile(self, version: str) -> VoiceRecord:
        """The record with `version`'s profile listed."""
        return self.model_copy(update={"profiles": {**self.profiles, version: ProfileEntry.of(version)}})

    def embedding_checkpoint(self, version: str) -> str | None:
        """SHA-256 of the checkpoint that made the stored embedding of `version`."""
        entry = self.embeddings.get(version)
        return entry.checkpoint_sha256 if entry is not None else None


# ------------------------------------------------------------------------------------ embeddings and profiles
def read_small(path: Path) -> bytes:
    """A small file of a voice (voice.json, an embedding, a profile), at most 1 MB; `Damage` otherwise."""
    try:
        if path.stat().st_size > MAX_SMALL_FILE:
            raise Damage(f"{path.name} is larger than 1 MB")
        return path.read_bytes()
    except FileNotFoundError:
        raise Damage(f"{path.name} is missing") from None
    except OSError as exc:
        raise Damage(f"{path.name} cannot be read ({exc.strerror})") from None


def parse_embedding(data: bytes, name: str) -> np.ndarray:
    """An embedding file's bytes as the `[1, N, 1]` float32 array it must hold; `Damage` otherwise."""
    try:
        emb = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError):
        raise Damage(f"{name} is not plain numbers") from None
    if (
        not isinstance(emb, np.ndarray)
        or emb.dtype != np.float32
        or emb.ndim != 3
        or emb.shape[0] != 1
        or emb.shape[2] != 1
        or not np.isfinite(emb).all()
    ):
        raise Damage(f"{name} is not a speaker embedding")
    return emb


def parse_profile(data: bytes, name: str) -> dict:
    """A profile file's bytes as the JSON object it must hold; `Damage` otherwise."""
    if len(data) > MAX_SMALL_FILE:
        raise Damage(f"{name} is larger than 1 MB")
    try:
        profile = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise Damage(f"{name} is not valid JSON") from None
    if not isinstance(profile, dict):
        raise Damage(f"{name} is not a JSON object")
    return profile


def profile_bytes(profile: dict) -> bytes:
    """A profile as its file holds it; `ValueError` unless it is a JSON object under 1 MB."""
    payload = _json_bytes(profile) if isinstance(profile, dict) else b""
    if not payload or len(payload) > MAX_SMALL_FILE:
        raise ValueError("a profile is a JSON object under 1 MB")
    return payload


def _json_bytes(data: dict) -> bytes:
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
