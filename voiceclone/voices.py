"""The voice library on disk: `voices/NAME/` holds voice.json, the processed speech and an embedding per
converter version.

Every change is made in a temporary folder inside the library and renamed into place, so an interrupted
command leaves the library as it was, and concurrent commands on different names do not meet.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from .errors import UserError
from .files import npy_bytes, write_atomic, write_durable

VOICES_DIR_ENV = "VOICECLONE_VOICES_DIR"
META_FILE = "voice.json"
SPEECH_FILE = "speech.flac"
_EMBEDDING = re.compile(r"embedding-(v\d+)\.npy")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_ALLOWED_FILES = re.compile(rf"{re.escape(META_FILE)}|{re.escape(SPEECH_FILE)}|embedding-v\d+\.npy")
_MAX_IMPORT_BYTES = 200 * 1024 * 1024


class VoiceError(UserError):
    """A voice name, voice folder or archive that cannot be used."""


def check_name(name: str) -> str:
    """A voice name is 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
        raise VoiceError(
            f"bad voice name {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


@dataclass
class Voice:
    """An enrolled voice as stored."""

    name: str
    folder: Path
    meta: dict

    def embedding(self, version: str) -> np.ndarray | None:
        """The stored `[1, 256, 1]` embedding for a converter version, if any."""
        path = self.folder / f"embedding-{version}.npy"
        return np.load(path, allow_pickle=False) if path.is_file() else None

    def embedding_checkpoint(self, version: str) -> str | None:
        """SHA-256 of the checkpoint that made the stored embedding of `version`."""
        return self.meta.get("embeddings", {}).get(version, {}).get("checkpoint_sha256")

    def speech(self) -> tuple[np.ndarray, int]:
        """The processed speech kept for re-embedding."""
        data, sr = sf.read(str(self.folder / SPEECH_FILE), dtype="float32")
        return data, sr


def default_voices_dir(explicit: str | Path | None = None, configured: str | Path | None = None) -> Path:
    """`--voices-dir`, else `$VOICECLONE_VOICES_DIR`, else the config's `voices_dir`, else `./voices`."""
    chosen = explicit or os.environ.get(VOICES_DIR_ENV) or configured or "voices"
    return Path(chosen).expanduser()


class VoiceLibrary:
    """The voices in one folder."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    # ------------------------------------------------------------------------------------------- reading
    def names(self) -> list[str]:
        """Names of the stored voices, sorted."""
        if not self.root.is_dir():
            return []
        self._recover()
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and _NAME.fullmatch(p.name) and (p / META_FILE).is_file())

    def get(self, name: str) -> Voice:
        """A stored voice, or an error naming the voices there are."""
        check_name(name)
        self._recover()
        folder = self.root / name
        if not (folder / META_FILE).is_file():
            known = ", ".join(self.names()) or "none yet: enroll one with `voiceclone enroll SAMPLE`"
            raise VoiceError(f"no voice named {name!r} in {self.root} (voices: {known})")
        try:
            meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise VoiceError(f"{folder / META_FILE}: damaged ({exc})") from None
        return Voice(name, folder, meta)

    def ensure_free(self, name: str, force: bool = False) -> None:
        """Fail unless `name` is free (or `force` allows replacing it)."""
        if not force and self.exists(name):
            raise self._taken(name)

    def exists(self, name: str) -> bool:
        """Whether a voice of that name is stored."""
        return (self.root / check_name(name) / META_FILE).is_file()

    # ------------------------------------------------------------------------------------------- writing
    def save(
        self, name: str, meta: dict, speech: np.ndarray, sr: int, embeddings: dict[str, np.ndarray], force: bool = False
    ) -> Voice:
        """Write a whole voice atomically; an existing name fails unless `force`, which replaces it whole."""
        self.ensure_free(name, force)
        with self._writing(name, force) as staging:
            sf.write(str(staging / SPEECH_FILE), speech, sr, format="FLAC", subtype="PCM_24")
            for version, emb in embeddings.items():
                _write_npy(staging / f"embedding-{version}.npy", emb)
            _write_json(staging / META_FILE, meta)
        return self.get(name)

    def add_embedding(self, voice: Voice, version: str, embedding: np.ndarray, checkpoint_sha256: str | None) -> Voice:
        """Store an embedding for another converter version beside the voice's others."""
        _write_npy_atomic(voice.folder / f"embedding-{version}.npy", embedding)
        meta = dict(voice.meta)
        meta.setdefault("embeddings", {})[version] = {
            "file": f"embedding-{version}.npy",
            "checkpoint_sha256": checkpoint_sha256,
        }
        _write_json_atomic(voice.folder / META_FILE, meta)
        return Voice(voice.name, voice.folder, meta)

    def remove(self, name: str) -> None:
        """Delete a voice: renamed out of the library first, so a crash never leaves half a voice."""
        voice = self.get(name)
        trash = Path(tempfile.mkdtemp(prefix=f".removing-{name}-", dir=self.root))
        voice.folder.rename(trash / name)
        shutil.rmtree(trash, ignore_errors=True)

    def rename(self, old: str, new: str) -> Voice:
        """Give a voice a new name (fails if the new name is taken)."""
        voice = self.get(old)
        check_name(new)
        if self.exists(new) or (self.root / new).exists():
            raise VoiceError(f"a voice named {new!r} already exists in {self.root}")
        meta = dict(voice.meta, name=new)
        _write_json_atomic(voice.folder / META_FILE, meta)
        try:
            voice.folder.rename(self.root / new)
        except OSError as exc:
            _write_json_atomic(voice.folder / META_FILE, voice.meta)
            raise VoiceError(f"cannot rename {old!r} to {new!r}: {exc.strerror}") from None
        return self.get(new)

    def export(self, name: str, archive: Path) -> Path:
        """Pack a voice into a .tar.gz archive for another machine."""
        voice = self.get(name)
        archive = Path(archive)
        if archive.is_dir():
            archive = archive / f"{name}.voice.tar.gz"
        if not archive.parent.is_dir():
            raise VoiceError(f"{archive.parent}: folder not found")
        fd, tmp = tempfile.mkstemp(prefix=f".{archive.name}-", dir=archive.parent)
        os.close(fd)
        try:
            with tarfile.open(tmp, "w:gz") as tar:
                for path in sorted(voice.folder.iterdir()):
                    if path.is_file() and _ALLOWED_FILES.fullmatch(path.name):
                        tar.add(path, arcname=f"{name}/{path.name}", recursive=False)
            os.replace(tmp, archive)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return archive

    def import_archive(self, archive: Path, name: str | None = None, force: bool = False) -> Voice:
        """Unpack an exported voice. The archive is untrusted: only the voice's own plain files are taken."""
        archive = Path(archive)
        if not archive.is_file():
            raise VoiceError(f"{archive}: file not found" if not archive.exists() else f"{archive}: not a file")
        try:
            tar = tarfile.open(archive, "r:*")
        except (tarfile.TarError, OSError) as exc:
            raise VoiceError(f"{archive}: not a voice archive ({exc})") from None
        with tar:
            files, original = _safe_members(tar, archive)
            name = check_name(name or original)
            self.ensure_free(name, force)
            with self._writing(name, force) as staging:
                for member in files:
                    data = tar.extractfile(member)
                    assert data is not None
                    (staging / Path(member.name).name).write_bytes(data.read())
                meta = _validate_voice_folder(staging, archive)
                meta["name"] = name
                _write_json(staging / META_FILE, meta)
        return self.get(name)

    # ------------------------------------------------------------------------------------------- internals
    def _taken(self, name: str) -> VoiceError:
        return VoiceError(f"a voice named {name!r} already exists in {self.root}: choose another --name or use --force")

    @contextmanager
    def _writing(self, name: str, force: bool) -> Iterator[Path]:
        """A staging folder to fill; renamed into place when the block succeeds, removed when it fails."""
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".staging-{name}-", dir=self.root))
        try:
            yield staging
            self._commit(staging, name, force)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def _commit(self, staging: Path, name: str, force: bool) -> None:
        """Move a complete voice folder into place."""
        target = self.root / name
        if force and target.exists():
            # Park the old voice under a name `_recover` knows, swap, then delete the old one.
            parked = self.root / f".replaced-{name}"
            shutil.rmtree(parked, ignore_errors=True)
            target.rename(parked)
            staging.rename(target)
            shutil.rmtree(parked, ignore_errors=True)
            return
        try:
            staging.rename(target)  # fails if another command created the name meanwhile
        except OSError:
            raise self._taken(name) from None

    def _recover(self) -> None:
        """Put back a voice whose replacement was interrupted between its two renames."""
        if not self.root.is_dir():
            return
        for parked in self.root.glob(".replaced-*"):
            target = self.root / parked.name[len(".replaced-") :]
            if not target.exists():
                try:
                    parked.rename(target)
                except OSError:
                    pass


def _safe_members(tar: tarfile.TarFile, archive: Path) -> tuple[list[tarfile.TarInfo], str]:
    files: list[tarfile.TarInfo] = []
    top: str | None = None
    total = 0
    for member in tar.getmembers():
        parts = Path(member.name).parts
        if member.name.startswith("/") or ".." in parts or len(parts) > 2 or not parts:
            raise VoiceError(f"{archive}: refused: entry {member.name!r} points outside a voice folder")
        if member.isdir() and len(parts) == 1:
            continue
        if not member.isfile():
            raise VoiceError(f"{archive}: refused: entry {member.name!r} is a link or special file")
        if len(parts) != 2 or not _ALLOWED_FILES.fullmatch(parts[1]):
            raise VoiceError(f"{archive}: refused: unexpected entry {member.name!r}")
        if top is None:
            top = parts[0]
        elif parts[0] != top:
            raise VoiceError(f"{archive}: refused: it holds more than one voice")
        total += member.size
        if total > _MAX_IMPORT_BYTES:
            raise VoiceError(f"{archive}: refused: larger than a voice can be")
        files.append(member)
    if top is None or not any(Path(m.name).name == META_FILE for m in files):
        raise VoiceError(f"{archive}: not a voice archive (no {META_FILE} inside)")
    return files, top


def _validate_voice_folder(folder: Path, source: Path) -> dict:
    try:
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise VoiceError(f"{source}: its {META_FILE} is damaged") from None
    if not isinstance(meta, dict):
        raise VoiceError(f"{source}: its {META_FILE} is not a voice description")
    if not (folder / SPEECH_FILE).is_file():
        raise VoiceError(f"{source}: it holds no {SPEECH_FILE}")
    try:
        sf.info(str(folder / SPEECH_FILE))
    except (sf.LibsndfileError, RuntimeError):
        raise VoiceError(f"{source}: its {SPEECH_FILE} is damaged") from None
    for path in folder.glob("embedding-*.npy"):
        try:
            emb = np.load(path, allow_pickle=False)
        except (ValueError, OSError):
            raise VoiceError(f"{source}: {path.name} is damaged or not plain numbers") from None
        if emb.dtype != np.float32 or emb.ndim != 3 or emb.shape[0] != 1 or emb.shape[2] != 1 or not np.isfinite(emb).all():
            raise VoiceError(f"{source}: {path.name} is not a speaker embedding")
    return meta


def _json_bytes(meta: dict) -> bytes:
    return (json.dumps(meta, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _write_npy(path: Path, array: np.ndarray) -> None:
    write_durable(path, npy_bytes(array))


def _write_json(path: Path, meta: dict) -> None:
    write_durable(path, _json_bytes(meta))


def _write_npy_atomic(path: Path, array: np.ndarray) -> None:
    write_atomic(path, npy_bytes(array), durable=True)


def _write_json_atomic(path: Path, meta: dict) -> None:
    write_atomic(path, _json_bytes(meta), durable=True)
