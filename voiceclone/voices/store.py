"""The voice library on disk: `voices/NAME/` holds voice.json, the processed speech, an embedding per
converter version and a profile per matcher version.

Every change is made in a temporary folder or file inside the library and renamed into place, so an interrupted
command leaves the library as it was. Changes hold a lock (`ROOT/.lock`, see `_locked`) so that commands in
different processes never interleave; filling a new voice's folder happens before taking it, so enrolls of
different names still run side by side. Reading takes no lock: a reader that meets a change half done waits for
it (through the lock) and reads again, and one damaged voice is reported as such (`scan`) instead of breaking
the whole library.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import lzma
import os
import re
import shutil
import stat
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from filelock import FileLock, Timeout

from voiceclone.errors import UserError
from voiceclone.files import create_temp, npy_bytes, reporting_write_errors, write_atomic, write_durable

VOICES_DIR_ENV = "VOICECLONE_VOICES_DIR"
META_FILE = "voice.json"
SPEECH_FILE = "speech.flac"
LOCK_FILE = ".lock"
LOCK_TIMEOUT_S = 60.0  # every locked step is a few renames or small writes: a minute means something is stuck

# Enrollment keeps at most this much speech, the cleanest of it. The embedding is the mean of the converter's
# embeddings of ~10 s pieces; the mean settles within a minute or two of speech, so 5 minutes (30 pieces) is
# ample, while an hour would only cost memory, time and disk (and make exports too large to move).
MAX_SPEECH_S = 300.0
MAX_SAMPLE_RATE = 48000  # the highest rate a converter works at (OpenVoice: 22050)

_MIB = 1024 * 1024
_MAX_SMALL_FILE = _MIB  # voice.json, an embedding, a profile
# What export can produce, and so what import accepts: the speech as 24-bit FLAC, which at worst stores samples
# verbatim (3 bytes each) plus frame headers, voice.json and up to 16 embeddings and profiles, with a margin.
_MAX_SPEECH_BYTES = int(MAX_SPEECH_S * MAX_SAMPLE_RATE * 3 * 1.02) + _MIB
MAX_VOICE_BYTES = _MAX_SPEECH_BYTES + 17 * _MAX_SMALL_FILE
_MAX_ARCHIVE_TAIL = _MIB  # padding after a tar's last file (a few KiB in practice)
_READ_ATTEMPTS = 5

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_EMBEDDING_FILE = re.compile(r"embedding-(v\d+)\.npy")
_PROFILE_FILE = re.compile(r"profile-(m\d+)\.json")
_ALLOWED_FILES = re.compile(rf"{re.escape(META_FILE)}|{re.escape(SPEECH_FILE)}|embedding-v\d+\.npy|profile-m\d+\.json")
_PARKED = ".replaced-"  # a voice being replaced, parked between the two renames of `_commit`
_TRASH = ".removing-"  # a voice being deleted
_STREAM_ERRORS = (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError)


class VoiceError(UserError):
    """A voice name, voice folder or archive that cannot be used."""


class _Damage(Exception):
    """A voice file that cannot be used; the message names the file and what is wrong with it."""


def check_name(name: str) -> str:
    """A voice name is 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
        raise VoiceError(
            f"bad voice name {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


def embedding_file(version: str) -> str:
    """The file name of a converter version's embedding (`v2` -> `embedding-v2.npy`)."""
    name = f"embedding-{version}.npy"
    if not _EMBEDDING_FILE.fullmatch(name):
        raise ValueError(f"bad converter version {version!r}")
    return name


def profile_file(version: str) -> str:
    """The file name of a matcher version's profile (`m1` -> `profile-m1.json`)."""
    name = f"profile-{version}.json"
    if not _PROFILE_FILE.fullmatch(name):
        raise ValueError(f"bad matcher version {version!r}")
    return name


def damaged_error(name: str, root: Path, problem: str) -> VoiceError:
    """The error for a voice whose files are damaged: what is wrong and how to get the voice back."""
    return VoiceError(
        f"voice {name!r} in {root} is damaged ({problem}): remove it with `voiceclone voices rm {name} --yes` "
        f"and enroll it again"
    )


@dataclass
class Voice:
    """An enrolled voice as stored. Reading a damaged file raises `VoiceError` saying what to do."""

    name: str
    folder: Path
    meta: dict

    def embedding(self, version: str) -> np.ndarray | None:
        """The stored `[1, N, 1]` embedding for a converter version, if any."""
        path = self.folder / embedding_file(version)
        if not path.is_file():
            return None
        return self._read(lambda: _parse_embedding(_read_small(path), path.name))

    def embedding_checkpoint(self, version: str) -> str | None:
        """SHA-256 of the checkpoint that made the stored embedding of `version`."""
        return self.meta.get("embeddings", {}).get(version, {}).get("checkpoint_sha256")

    def profile(self, version: str) -> dict | None:
        """The stored profile for a matcher version, if any."""
        path = self.folder / profile_file(version)
        if not path.is_file():
            return None
        return self._read(lambda: _parse_profile(_read_small(path), path.name))

    def speech(self) -> tuple[np.ndarray, int]:
        """The processed speech kept for re-embedding (mono float32) and its sample rate."""
        path = self.folder / SPEECH_FILE
        if not path.is_file():
            raise damaged_error(self.name, self.folder.parent, f"{SPEECH_FILE} is missing")
        return self._read(lambda: _decode_speech(str(path)))

    def _read(self, read):
        try:
            return read()
        except _Damage as damage:
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


def default_voices_dir(explicit: str | Path | None = None, configured: str | Path | None = None) -> Path:
    """`--voices-dir`, else `$VOICECLONE_VOICES_DIR`, else the config's `voices_dir`, else `./voices`."""
    chosen = explicit or os.environ.get(VOICES_DIR_ENV) or configured or "voices"
    return Path(chosen).expanduser()


class VoiceLibrary:
    """The voices in one folder."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        # One instance per lock file in a process, so that nested use from two library objects re-enters it.
        self._lock = FileLock(str(self.root / LOCK_FILE), timeout=LOCK_TIMEOUT_S, is_singleton=True)

    # ------------------------------------------------------------------------------------------- reading
    def names(self) -> list[str]:
        """Names of the voices stored, damaged ones included, sorted."""
        try:  # one look, not is_dir() then exists(): another process may create the folder in between
            is_folder = stat.S_ISDIR(self.root.stat().st_mode)
        except FileNotFoundError:
            return []
        if not is_folder:
            raise self._not_a_folder()
        self._recover()
        return sorted(p.name for p in self.root.iterdir() if _valid_name(p.name) and _is_voice_folder(p))

    def scan(self) -> list[VoiceEntry]:
        """Every voice with its health, sorted by name: usable ones carry `voice`, damaged ones `problem`."""
        return [entry for name in self.names() if (entry := self._entry(name)) is not None]

    def entry(self, name: str) -> VoiceEntry:
        """One voice with its health, usable or damaged; an error if there is no voice of that name."""
        check_name(name)
        entry = self._entry(name)
        if entry is None:
            raise self._unknown(name)
        return entry

    def get(self, name: str) -> Voice:
        """A usable voice; an error naming the voices there are, or saying what is damaged and what to do."""
        entry = self.entry(name)
        if entry.voice is None:
            raise damaged_error(name, self.root, entry.problem or "unknown")
        return entry.voice

    def ensure_free(self, name: str, force: bool = False) -> None:
        """Fail unless `name` is free (or `force` allows replacing it)."""
        if not force and self.exists(name):
            raise self._taken(name)

    def exists(self, name: str) -> bool:
        """Whether a voice of that name is stored (usable or damaged)."""
        return _is_voice_folder(self.root / check_name(name))

    # ------------------------------------------------------------------------------------------- writing
    def save(
        self, name: str, meta: dict, speech: np.ndarray, sr: int, embeddings: dict[str, np.ndarray], force: bool = False
    ) -> Voice:
        """Write a whole voice atomically; an existing name fails unless `force`, which replaces it whole."""
        if len(speech) > MAX_SPEECH_S * sr or sr > MAX_SAMPLE_RATE:
            raise ValueError(f"a voice holds at most {MAX_SPEECH_S:.0f} s of speech at {MAX_SAMPLE_RATE} Hz or less")
        self.ensure_free(name, force)
        flac = _flac_bytes(speech, sr)
        with self._writing(name, force) as staging:
            write_durable(staging / SPEECH_FILE, flac)
            for version, emb in embeddings.items():
                _write_npy(staging / embedding_file(version), emb)
            _write_json(staging / META_FILE, meta)
        return self.get(name)

    def add_embedding(self, voice: Voice, version: str, embedding: np.ndarray, checkpoint_sha256: str | None) -> Voice:
        """Store an embedding for another converter version beside the voice's others.

        Nothing is stored if the voice was removed, renamed or replaced since `voice` was read (an embedding of
        the old speech must not land in a new voice); the voice is then returned as it was.
        """
        record = {"file": embedding_file(version), "checkpoint_sha256": checkpoint_sha256}
        return self._add_file(voice, "embeddings", version, record, npy_bytes(embedding))

    def add_profile(self, voice: Voice, version: str, data: dict) -> Voice:
        """Store a matcher version's profile (a JSON object under 1 MB) beside the voice's embeddings.

        As `add_embedding`: atomic, under the library's lock, recorded in voice.json under "profiles".
        """
        payload = _json_bytes(data) if isinstance(data, dict) else b""
        if not payload or len(payload) > _MAX_SMALL_FILE:
            raise ValueError("a profile is a JSON object under 1 MB")
        return self._add_file(voice, "profiles", version, {"file": profile_file(version)}, payload)

    def remove(self, name: str) -> None:
        """Delete a voice, damaged or not: renamed out of the library first, so a crash never leaves half a voice."""
        if not self.exists(name):
            raise self._unknown(name)
        with reporting_write_errors(self.root / name), self._locked():
            folder = self.root / name
            if not _is_voice_folder(folder):
                raise self._unknown(name)
            trash = Path(tempfile.mkdtemp(prefix=f"{_TRASH}{name}-", dir=self.root))
            folder.rename(trash / name)
            shutil.rmtree(trash, ignore_errors=True)

    def rename(self, old: str, new: str) -> Voice:
        """Give a voice a new name (fails if the new name is taken)."""
        check_name(new)
        self.get(old)  # a clear error before touching anything
        with reporting_write_errors(self.root / new), self._locked():
            voice = self.get(old)
            if (self.root / new).exists():
                raise VoiceError(f"a voice named {new!r} already exists in {self.root}")
            _write_json_atomic(voice.folder / META_FILE, dict(voice.meta, name=new))
            try:
                voice.folder.rename(self.root / new)
            except OSError as exc:
                _write_json_atomic(voice.folder / META_FILE, voice.meta)
                raise VoiceError(f"cannot rename {old!r} to {new!r}: {exc.strerror}") from None
        return self.get(new)

    def export(self, name: str, archive: Path, force: bool = False) -> Path:
        """Pack a voice into a .tar.gz archive for another machine (`import_archive` takes any archive this
        makes); the file follows the umask. An existing file is replaced only with `force`: the name given may
        well be a recording (`voices export alice alice.wav`)."""
        check_name(name)
        archive = Path(archive)
        if archive.is_dir():
            archive = archive / f"{name}.voice.tar.gz"
        if not archive.parent.is_dir():
            raise VoiceError(f"{archive.parent}: folder not found")
        if archive.exists() and not force:
            raise VoiceError(f"{archive}: already exists; give another file name, or --force to replace it")
        files = self._snapshot(name)
        with reporting_write_errors(archive):
            _write_archive(archive, name, files)
        return archive

    def import_archive(self, archive: Path, name: str | None = None, force: bool = False) -> Voice:
        """Unpack an exported voice. The archive is untrusted: only the voice's own plain files are taken, checked."""
        archive = Path(archive)
        if not archive.is_file():
            raise VoiceError(f"{archive}: file not found" if not archive.exists() else f"{archive}: not a file")
        original, files = _read_archive(archive)
        meta = _check_voice_files(files, archive)
        name = check_name(name or original)
        self.ensure_free(name, force)
        files[META_FILE] = _json_bytes(dict(meta, name=name))
        with self._writing(name, force) as staging:
            for file_name, data in files.items():
                write_durable(staging / file_name, data)
        return self.get(name)

    # ------------------------------------------------------------------------------------------- internals
    def _taken(self, name: str) -> VoiceError:
        return VoiceError(f"a voice named {name!r} already exists in {self.root}: choose another --name or use --force")

    def _not_a_folder(self) -> VoiceError:
        return VoiceError(f"{self.root}: not a folder; give the voice library's folder with --voices-dir")

    def _make_root(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise self._not_a_folder() from None

    def _unknown(self, name: str) -> VoiceError:
        known = ", ".join(self.names()) or "none yet: enroll one with `voiceclone enroll SAMPLE`"
        return VoiceError(f"no voice named {name!r} in {self.root} (voices: {known})")

    def _entry(self, name: str) -> VoiceEntry | None:
        """The voice folder `name` with its health, or None if there is none.

        Reading takes no lock, so another process may replace, rename or remove the voice meanwhile. A problem
        is reported only if the folder is still the same one after reading it; otherwise the read is retried,
        after waiting (in `_recover`) for a replacement under way to finish.
        """
        entry = None
        for _ in range(_READ_ATTEMPTS):
            self._recover()
            folder = self.root / name
            before = _identity(folder)
            if before is None or not _is_voice_folder(folder):
                if self._parked(name).exists():  # a replacement is between its two renames
                    continue
                return None
            entry = _inspect(name, folder)
            if entry.ok or (_identity(folder) == before and not self._parked(name).exists()):
                return entry
        return entry

    def _current(self, voice: Voice) -> Voice | None:
        """The stored voice if it is still the one `voice` was read from (same folder, same speech)."""
        entry = self._entry(voice.name)
        if entry is None or entry.voice is None or entry.folder != voice.folder:
            return None
        return entry.voice if _essence(entry.voice.meta) == _essence(voice.meta) else None

    def _add_file(self, voice: Voice, section: str, version: str, record: dict, payload: bytes) -> Voice:
        """Write one file into a stored voice and record it in voice.json under `section` -> `version`."""
        with reporting_write_errors(voice.folder / record["file"]), self._locked():
            current = self._current(voice)
            if current is None:
                return voice
            write_atomic(current.folder / record["file"], payload, durable=True)
            meta = copy.deepcopy(current.meta)
            if not isinstance(meta.get(section), dict):
                meta[section] = {}
            meta[section][version] = record
            _write_json_atomic(current.folder / META_FILE, meta)
        return Voice(current.name, current.folder, meta)

    def _snapshot(self, name: str) -> dict[str, tuple[bytes, float]]:
        """A voice's files, read whole under the lock so that no change lands halfway through.

        A damaged voice is taken as it is (to move it elsewhere, say): the importing side checks every file.
        """
        with self._locked(optional=True):
            folder = self.entry(name).folder
            paths = [p for p in sorted(folder.iterdir()) if p.is_file() and _ALLOWED_FILES.fullmatch(p.name)]
            size = sum(p.stat().st_size for p in paths)
            if size > MAX_VOICE_BYTES:
                raise VoiceError(
                    f"voice {name!r} is too large to export ({size / _MIB:.0f} MB; it was enrolled by an older "
                    f"version that kept all its speech): enroll it again to keep the best "
                    f"{MAX_SPEECH_S / 60:.0f} minutes"
                )
            return {p.name: (p.read_bytes(), p.stat().st_mtime) for p in paths}

    @contextmanager
    def _writing(self, name: str, force: bool) -> Iterator[Path]:
        """A staging folder to fill; renamed into place when the block succeeds, removed when it fails."""
        with reporting_write_errors(self.root / name):
            self._make_root()
            staging = Path(tempfile.mkdtemp(prefix=f".staging-{name}-", dir=self.root))
            try:
                yield staging
                self._commit(staging, name, force)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise

    def _commit(self, staging: Path, name: str, force: bool) -> None:
        """Move a complete voice folder into place, under the lock."""
        target = self.root / name
        with self._locked():
            if target.exists():
                if not force:
                    raise self._taken(name)  # another command created the name meanwhile
                # Park the old voice under a name `_recover` knows, swap, then delete the old one.
                parked = self._parked(name)
                target.rename(parked)
                try:
                    staging.rename(target)
                except OSError:
                    parked.rename(target)
                    raise
                shutil.rmtree(parked, ignore_errors=True)
                return
            staging.rename(target)

    def _parked(self, name: str) -> Path:
        return self.root / f"{_PARKED}{name}"

    @contextmanager
    def _locked(self, optional: bool = False) -> Iterator[bool]:
        """Hold the library's lock across processes; re-entrant. Yields whether it is held.

        `optional` goes on without it where the lock file cannot be made (a read-only library, which nobody can
        be changing). Crash recovery runs first, so that a holder always sees a library with no change half done.

        The lock file is removed again before the lock is released, so that the library folder holds only
        voices; that is safe because filelock (>= 3.20.4), having locked a file, checks it is still linked and
        starts over if not.
        """
        held = self._acquire(optional)
        try:
            if held and self._lock.lock_counter == 1:
                self._recover_locked()
            yield held
        finally:
            if held:
                if self._lock.lock_counter == 1:
                    with contextlib.suppress(OSError):
                        os.unlink(self._lock.lock_file)
                self._lock.release()

    def _acquire(self, optional: bool) -> bool:
        """Take the lock; False if `optional` and the lock file cannot be made."""
        try:
            self._make_root()
            self._lock.acquire()
        except Timeout:
            raise VoiceError(
                f"the voice library {self.root} is busy: another voiceclone command has held it for "
                f"{LOCK_TIMEOUT_S:.0f} s; try again when it has finished"
            ) from None
        except OSError:
            if not optional:
                raise
            return False
        return True

    def _recover(self) -> None:
        """Finish what an interrupted command left half done, waiting (on the lock) for one still running."""
        if any(self.root.glob(f"{_PARKED}*")) or any(self.root.glob(f"{_TRASH}*")):
            with self._locked(optional=True):
                pass  # taking the lock runs `_recover_locked`

    def _recover_locked(self) -> None:
        """Under the lock, nothing is half done by a live command: what is found was left by a crash."""
        for parked in self.root.glob(f"{_PARKED}*"):
            target = self.root / parked.name[len(_PARKED) :]
            try:
                if target.exists():  # the swap was done; only deleting the old voice was cut short
                    shutil.rmtree(parked)
                else:  # cut short between the renames: the old voice goes back
                    parked.rename(target)
            except OSError:
                pass  # left for the next command; reading goes on
        for trash in self.root.glob(f"{_TRASH}*"):
            shutil.rmtree(trash, ignore_errors=True)


# ------------------------------------------------------------------------------------------- voice folders
def _valid_name(name: str) -> bool:
    return bool(_NAME.fullmatch(name)) and ".." not in name


def _is_voice_folder(folder: Path) -> bool:
    """A folder holding any of a voice's files (a damaged voice may lack some)."""
    try:
        return folder.is_dir() and any(_ALLOWED_FILES.fullmatch(child.name) for child in folder.iterdir())
    except OSError:
        return False


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


def _essence(meta: dict) -> dict:
    """What identifies a voice's content: everything but the files made from it later."""
    return {k: v for k, v in meta.items() if k not in ("embeddings", "profiles")}


def _inspect(name: str, folder: Path) -> VoiceEntry:
    """A voice folder's health: every file is read and checked, the speech only at its start and end."""
    try:
        meta = _parse_meta(_read_small(folder / META_FILE))
        _check_speech(folder / SPEECH_FILE)
        for path in sorted(folder.iterdir()):
            if _EMBEDDING_FILE.fullmatch(path.name):
                _parse_embedding(_read_small(path), path.name)
            elif _PROFILE_FILE.fullmatch(path.name):
                _parse_profile(_read_small(path), path.name)
    except _Damage as damage:
        return VoiceEntry(name, folder, None, str(damage))
    except OSError as exc:
        return VoiceEntry(name, folder, None, f"its folder cannot be read ({exc.strerror})")
    return VoiceEntry(name, folder, Voice(name, folder, meta), None)


def _read_small(path: Path) -> bytes:
    try:
        if path.stat().st_size > _MAX_SMALL_FILE:
            raise _Damage(f"{path.name} is larger than 1 MB")
        return path.read_bytes()
    except FileNotFoundError:
        raise _Damage(f"{path.name} is missing") from None
    except OSError as exc:
        raise _Damage(f"{path.name} cannot be read ({exc.strerror})") from None


def _parse_meta(data: bytes) -> dict:
    try:
        meta = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _Damage(f"{META_FILE} is not valid JSON") from None
    if not isinstance(meta, dict) or not all(_is_table(meta.get(key, {})) for key in ("embeddings", "profiles")):
        raise _Damage(f"{META_FILE} is not a voice description")
    return meta


def _is_table(section) -> bool:
    """A voice.json section such as "embeddings": {version: {...}}."""
    return isinstance(section, dict) and all(isinstance(value, dict) for value in section.values())


def _parse_embedding(data: bytes, name: str) -> np.ndarray:
    try:
        emb = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError):
        raise _Damage(f"{name} is not plain numbers") from None
    if (
        not isinstance(emb, np.ndarray)
        or emb.dtype != np.float32
        or emb.ndim != 3
        or emb.shape[0] != 1
        or emb.shape[2] != 1
        or not np.isfinite(emb).all()
    ):
        raise _Damage(f"{name} is not a speaker embedding")
    return emb


def _parse_profile(data: bytes, name: str) -> dict:
    if len(data) > _MAX_SMALL_FILE:
        raise _Damage(f"{name} is larger than 1 MB")
    try:
        profile = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise _Damage(f"{name} is not valid JSON") from None
    if not isinstance(profile, dict):
        raise _Damage(f"{name} is not a JSON object")
    return profile


def _check_speech(path: Path) -> None:
    """A cheap check of speech.flac: its header, and its last samples decode (a cut FLAC fails there)."""
    if not path.is_file():
        raise _Damage(f"{SPEECH_FILE} is missing")
    try:
        with sf.SoundFile(str(path)) as f:
            if f.format != "FLAC" or f.frames <= 0:
                raise _Damage(f"{SPEECH_FILE} holds no FLAC audio")
            f.seek(max(0, f.frames - 4096))
            if len(f.read(4096, dtype="float32")) < min(f.frames, 4096):
                raise _Damage(f"{SPEECH_FILE} ends before the audio it announces")
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise _Damage(f"{SPEECH_FILE} cannot be decoded ({_detail(exc)})") from None


def _decode_speech(source) -> tuple[np.ndarray, int]:
    """All of speech.flac (a path or a file object) as mono float32, and its rate."""
    try:
        with sf.SoundFile(source) as f:
            expected, sr, fmt = f.frames, f.samplerate, f.format
            data = f.read(dtype="float32")
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise _Damage(f"{SPEECH_FILE} cannot be decoded ({_detail(exc)})") from None
    if fmt != "FLAC" or len(data) == 0:
        raise _Damage(f"{SPEECH_FILE} holds no FLAC audio")
    if len(data) < expected:
        raise _Damage(f"{SPEECH_FILE} ends before the audio it announces")
    return (data.mean(axis=1, dtype=np.float32) if data.ndim > 1 else data), int(sr)


def _detail(exc: Exception) -> str:
    return str(exc).split(":")[-1].strip().rstrip(".") or type(exc).__name__


# ------------------------------------------------------------------------------------------------ archives
def _write_archive(archive: Path, name: str, files: dict[str, tuple[bytes, float]]) -> None:
    """Write the archive beside its final place and rename it there once complete (and on disk)."""
    fd, tmp = create_temp(archive.parent, f".{archive.name}-")
    try:
        with os.fdopen(fd, "wb") as fh:
            with tarfile.open(fileobj=fh, mode="w:gz") as tar:
                for file_name, (data, mtime) in files.items():
                    info = tarfile.TarInfo(f"{name}/{file_name}")
                    info.size, info.mtime, info.mode = len(data), int(mtime), 0o644
                    tar.addfile(info, io.BytesIO(data))
            fh.flush()
            os.fsync(fh.fileno())  # a full disk on a file system that allocates late shows here, not at rename
        os.replace(tmp, archive)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _read_archive(archive: Path) -> tuple[str, dict[str, bytes]]:
    """The one voice an archive holds: its folder name and its files, read whole within the size limits.

    Raises:
        VoiceError: not a voice archive, hostile or too large, or truncated or corrupt.
    """
    try:
        with tarfile.open(archive, "r:*") as tar:
            try:
                return _read_members(tar, archive)
            except _STREAM_ERRORS as exc:  # the archive opened, then its data ran out or did not check
                raise _corrupt(archive, exc) from None
    except tarfile.ReadError:  # not a tar archive in any compression tarfile knows (its reason lists them all)
        raise VoiceError(f"{archive}: not a voice archive (one is made by `voiceclone voices export`)") from None
    except tarfile.TarError as exc:
        raise VoiceError(f"{archive}: not a voice archive ({exc})") from None
    except (EOFError, zlib.error, lzma.LZMAError) as exc:
        raise _corrupt(archive, exc) from None
    except OSError as exc:
        raise VoiceError(f"{archive}: cannot read it ({exc.strerror or exc})") from None


def _corrupt(archive: Path, exc: BaseException) -> VoiceError:
    detail = str(exc) or type(exc).__name__
    return VoiceError(f"{archive}: the archive is truncated or corrupt ({detail}); copy or export it again")


def _read_members(tar: tarfile.TarFile, archive: Path) -> tuple[str, dict[str, bytes]]:
    files: dict[str, bytes] = {}
    top: str | None = None
    total = 0
    for member in tar:  # one pass, each file read before the next header: a compressed stream is never rewound
        parts = _member_parts(member, archive)
        if parts is None:
            continue
        if top is None:
            top = parts[0]
        elif parts[0] != top:
            raise VoiceError(f"{archive}: refused: it holds more than one voice")
        if parts[1] in files:
            raise VoiceError(f"{archive}: refused: entry {member.name!r} appears twice")
        total += member.size
        limit = _MAX_SPEECH_BYTES if parts[1] == SPEECH_FILE else _MAX_SMALL_FILE
        if member.size > limit or total > MAX_VOICE_BYTES:
            raise VoiceError(f"{archive}: refused: larger than a voice can be ({member.name!r}: {member.size} bytes)")
        stream = tar.extractfile(member)
        data = stream.read() if stream is not None else b""
        if len(data) != member.size:
            raise EOFError(f"{member.name} ends early")
        files[parts[1]] = data
    _read_to_end(tar, archive)
    if top is None or META_FILE not in files:
        raise VoiceError(f"{archive}: not a voice archive (no {META_FILE} inside)")
    return top, files


def _member_parts(member: tarfile.TarInfo, archive: Path) -> tuple[str, str] | None:
    """(voice folder, file name) of an archive entry, None for the folder itself, or an error if it is unsafe."""
    parts = Path(member.name).parts
    if member.name.startswith("/") or ".." in parts or len(parts) > 2 or not parts:
        raise VoiceError(f"{archive}: refused: entry {member.name!r} points outside a voice folder")
    if member.isdir() and len(parts) == 1:
        return None
    if not member.isfile():
        raise VoiceError(f"{archive}: refused: entry {member.name!r} is a link or special file")
    if len(parts) != 2 or not _ALLOWED_FILES.fullmatch(parts[1]):
        raise VoiceError(f"{archive}: refused: unexpected entry {member.name!r}")
    return parts[0], parts[1]


def _read_to_end(tar: tarfile.TarFile, archive: Path) -> None:
    """Read what follows the last file: a compressed stream is checked (length, checksum) only at its end, so
    an archive cut after its last file's data fails here rather than passing."""
    tail = 0
    while chunk := tar.fileobj.read(1 << 16):
        tail += len(chunk)
        if tail > _MAX_ARCHIVE_TAIL:
            raise VoiceError(f"{archive}: refused: unexpected data after the voice")


def _check_voice_files(files: dict[str, bytes], archive: Path) -> dict:
    """Every file of an imported voice decodes and is what its name says; returns the voice's description."""
    try:
        meta = _parse_meta(files[META_FILE])
        if SPEECH_FILE not in files:
            raise _Damage(f"{SPEECH_FILE} is missing")
        _decode_speech(io.BytesIO(files[SPEECH_FILE]))
        for file_name, data in files.items():
            if _EMBEDDING_FILE.fullmatch(file_name):
                _parse_embedding(data, file_name)
            elif _PROFILE_FILE.fullmatch(file_name):
                _parse_profile(data, file_name)
    except _Damage as damage:
        raise VoiceError(f"{archive}: the voice in it is damaged ({damage}); export it again") from None
    return meta


# --------------------------------------------------------------------------------------------------- files
def _flac_bytes(speech: np.ndarray, sr: int) -> bytes:
    """Encoded in memory and then written like any other file: libsndfile writing to disk itself reports a
    full disk only as "System error."."""
    buf = io.BytesIO()
    sf.write(buf, speech, sr, format="FLAC", subtype="PCM_24")
    return buf.getvalue()


def _json_bytes(meta: dict) -> bytes:
    return (json.dumps(meta, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _write_npy(path: Path, array: np.ndarray) -> None:
    write_durable(path, npy_bytes(array))


def _write_json(path: Path, meta: dict) -> None:
    write_durable(path, _json_bytes(meta))


def _write_json_atomic(path: Path, meta: dict) -> None:
    write_atomic(path, _json_bytes(meta), durable=True)
