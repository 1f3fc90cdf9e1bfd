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
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from filelock import FileLock, Timeout

from voiceclone.files import npy_bytes, rename_target, reporting_write_errors, write_atomic, write_durable
from voiceclone.voices.archive import check_voice_files, read_archive, write_archive
from voiceclone.voices.errors import VoiceError, VoiceExists, damaged_error
from voiceclone.voices.folder import Voice, VoiceEntry, inspect, is_voice_folder
from voiceclone.voices.names import (
    MAX_SAMPLE_RATE,
    MAX_SPEECH_S,
    MAX_VOICE_BYTES,
    META_FILE,
    MIB,
    SPEECH_FILE,
    check_name,
    embedding_file,
    is_voice_file,
    profile_file,
    valid_name,
)
from voiceclone.voices.record import VoiceRecord, profile_bytes
from voiceclone.voices.speech_file import flac_bytes

LOCK_FILE = ".lock"
LOCK_TIMEOUT_S = 60.0  # every locked step is a few renames or small writes: a minute means something is stuck
_READ_ATTEMPTS = 5
_PARKED = ".replaced-"  # a voice being replaced, parked between the two renames of `_commit`
_TRASH = ".removing-"  # a voice being deleted


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
        return sorted(p.name for p in self.root.iterdir() if valid_name(p.name) and is_voice_folder(p))

    def scan(self) -> list[VoiceEntry]:
        """Every voice with its health, sorted by name: usable ones carry `voice`, damaged ones `problem`."""
        return [entry for name in self.names() if (entry := self._entry(name)) is not None]

    def entry(self, name: str) -> VoiceEntry:
        """One voice with its health, usable or damaged; an error if there is no voice of that name (in any letter
        case: "Alice" finds the voice stored as "alice")."""
        name = self.stored_name(name)
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
        """Fail unless `name` is free (or `force` allows replacing it). Names ignore letter case, on every file
        system: `CAROL` beside `carol` would be one folder on macOS and Windows and two on Linux, so a name taken
        in other letters is refused even with `force` (replace it under its own spelling)."""
        other = self.other_case(name)
        if other is not None:
            raise VoiceExists(
                f"a voice named {other!r} already exists (voice names ignore letter case): choose another name"
                + (f", or replace it as {other!r}" if force else ""),
                other,
            )
        if not force and self.exists(name):
            raise self._taken(name)
        if not self.exists(name) and (self.root / name).exists():
            raise VoiceError(
                f"{self.root / name}: is in the voice library but is not a voice (an empty folder or a stray file); "
                "move it away, or choose another name"
            )

    def other_case(self, name: str) -> str | None:
        """The stored voice whose name is `name` in other letter case ("Carol" for "carol"), or None."""
        check_name(name)
        try:
            entries = list(self.root.iterdir()) if self.root.is_dir() else []
        except OSError:
            return None
        folded = name.casefold()
        return next(
            (p.name for p in entries if p.name != name and p.name.casefold() == folded and is_voice_folder(p)), None
        )

    def stored_name(self, name: str) -> str:
        """How `name` is spelt in the library: itself, or the stored voice's name in other letter case (names
        ignore letter case), or `name` when there is no such voice."""
        if self.exists(name):
            return name
        return self.other_case(name) or name

    def exists(self, name: str) -> bool:
        """Whether a voice of that name is stored (usable or damaged)."""
        return is_voice_folder(self.root / check_name(name))

    # ------------------------------------------------------------------------------------------- writing
    def save(
        self,
        name: str,
        record: VoiceRecord,
        speech: np.ndarray,
        sr: int,
        embeddings: dict[str, np.ndarray],
        force: bool = False,
    ) -> Voice:
        """Write a whole voice atomically; an existing name fails unless `force`, which replaces it whole."""
        if len(speech) > MAX_SPEECH_S * sr or sr > MAX_SAMPLE_RATE:
            raise ValueError(f"a voice holds at most {MAX_SPEECH_S:.0f} s of speech at {MAX_SAMPLE_RATE} Hz or less")
        self.ensure_free(name, force)
        flac = flac_bytes(speech, sr)
        with self._writing(name, force) as staging:
            write_durable(staging / SPEECH_FILE, flac)
            for version, emb in embeddings.items():
                _write_npy(staging / embedding_file(version), emb)
            _write_record(staging / META_FILE, record)
        return self.get(name)

    def add_embedding(self, voice: Voice, version: str, embedding: np.ndarray, checkpoint_sha256: str | None) -> Voice:
        """Store an embedding for another converter version beside the voice's others.

        Nothing is stored if the voice was removed, renamed or replaced since `voice` was read (an embedding of
        the old speech must not land in a new voice); the voice is then returned as it was.
        """
        return self._add_file(
            voice, embedding_file(version), npy_bytes(embedding), lambda r: r.with_embedding(version, checkpoint_sha256)
        )

    def add_profile(self, voice: Voice, version: str, data: dict) -> Voice:
        """Store a matcher version's profile (a JSON object under 1 MB) beside the voice's embeddings.

        As `add_embedding`: atomic, under the library's lock, recorded in voice.json under "profiles".
        """
        payload = profile_bytes(data)
        return self._add_file(voice, profile_file(version), payload, lambda r: r.with_profile(version))

    def remove(self, name: str) -> None:
        """Delete a voice, damaged or not: renamed out of the library first, so a crash never leaves half a voice."""
        name = self.stored_name(name)
        if not self.exists(name):
            raise self._unknown(name)
        with reporting_write_errors(self.root / name), self._locked():
            folder = self.root / name
            if not is_voice_folder(folder):
                raise self._unknown(name)
            trash = Path(tempfile.mkdtemp(prefix=f"{_TRASH}{name}-", dir=self.root))
            folder.rename(trash / name)
            shutil.rmtree(trash, ignore_errors=True)

    def rename(self, old: str, new: str) -> Voice:
        """Give a voice a new name (fails if the new name is taken)."""
        check_name(new)
        old = self.stored_name(old)
        self.get(old)  # a clear error before touching anything
        with reporting_write_errors(self.root / new), self._locked():
            voice = self.get(old)
            if (self.root / new).exists():
                raise VoiceExists(f"a voice named {new!r} already exists in {self.root}", new)
            if self.other_case(new) not in (None, old):
                self.ensure_free(new)
            _write_record_atomic(voice.folder / META_FILE, voice.record.renamed(new))
            try:
                voice.folder.rename(self.root / new)
            except OSError as exc:
                _write_record_atomic(voice.folder / META_FILE, voice.record)
                raise VoiceError(f"cannot rename {old!r} to {new!r}: {exc.strerror}") from None
        return self.get(new)

    def export(self, name: str, archive: Path, force: bool = False) -> Path:
        """Pack a voice into a .tar.gz archive for another machine (`import_archive` takes any archive this
        makes); the file follows the umask. The name ends in .tar.gz or .tgz (or has no suffix): `alice.wav` may well
        be the recording. An existing file is replaced only with `force`."""
        name = self.stored_name(check_name(name))  # the archive holds the voice under its own spelling
        archive = Path(archive)
        if archive.is_dir():
            archive = archive / f"{name}.voice.tar.gz"
        if not archive.parent.is_dir():
            raise VoiceError(f"{archive.parent}: folder not found")
        if archive.suffix and not archive.name.lower().endswith((".tar.gz", ".tgz")):
            # `voices export alice alice.zip` would be a .tar.gz under another name, and `alice.wav` a recording lost
            raise VoiceError(f"{archive}: a voice is exported as a .tar.gz archive; name it {name}.voice.tar.gz")
        if archive.exists() and not force:
            raise VoiceError(f"{archive}: already exists; give another file name, or --force to replace it")
        target = rename_target(archive)  # through a link; never over a device or a pipe
        files = self._snapshot(name)
        with reporting_write_errors(archive):
            write_archive(target, name, files)
        return archive

    def import_archive(self, archive: Path, name: str | None = None, force: bool = False) -> Voice:
        """Unpack an exported voice. The archive is untrusted: only the voice's own plain files are taken, checked."""
        archive = Path(archive)
        if not archive.is_file():
            raise VoiceError(f"{archive}: file not found" if not archive.exists() else f"{archive}: not a file")
        original, files = read_archive(archive)
        record = check_voice_files(files, archive)
        name = check_name(name or original)
        self.ensure_free(name, force)
        files[META_FILE] = record.renamed(name).to_bytes()
        with self._writing(name, force) as staging:
            for file_name, data in files.items():
                write_durable(staging / file_name, data)
        return self.get(name)

    # ------------------------------------------------------------------------------------------- internals
    def _taken(self, name: str) -> VoiceError:
        return VoiceExists(
            f"a voice named {name!r} already exists in {self.root}: choose another --name or use --force", name
        )

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
            if before is None or not is_voice_folder(folder):
                if self._parked(name).exists():  # a replacement is between its two renames
                    continue
                return None
            entry = inspect(name, folder)
            if entry.ok or (_identity(folder) == before and not self._parked(name).exists()):
                return entry
        return entry

    def _current(self, voice: Voice) -> Voice | None:
        """The stored voice if it is still the one `voice` was read from (same folder, same speech)."""
        entry = self._entry(voice.name)
        if entry is None or entry.voice is None or entry.folder != voice.folder:
            return None
        return entry.voice if entry.voice.record.content() == voice.record.content() else None

    def _add_file(
        self, voice: Voice, file_name: str, payload: bytes, update: Callable[[VoiceRecord], VoiceRecord]
    ) -> Voice:
        """Write one file into a stored voice and record it in voice.json (`update` lists it there)."""
        with reporting_write_errors(voice.folder / file_name), self._locked():
            current = self._current(voice)
            if current is None:
                return voice
            write_atomic(current.folder / file_name, payload, durable=True)
            record = update(current.record)
            _write_record_atomic(current.folder / META_FILE, record)
        return Voice(current.name, current.folder, record)

    def _snapshot(self, name: str) -> dict[str, tuple[bytes, float]]:
        """A voice's files, read whole under the lock so that no change lands halfway through.

        A damaged voice is taken as it is (to move it elsewhere, say): the importing side checks every file.
        """
        with self._locked(optional=True):
            folder = self.entry(name).folder
            paths = [p for p in sorted(folder.iterdir()) if p.is_file() and is_voice_file(p.name)]
            size = sum(p.stat().st_size for p in paths)
            if size > MAX_VOICE_BYTES:
                raise VoiceError(
                    f"voice {name!r} is too large to export ({size / MIB:.0f} MB; it was enrolled by an older "
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
            if self.other_case(name) is not None:
                self.ensure_free(name, force)  # "Carol" was made meanwhile: refuse as a taken name
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
def _identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


# --------------------------------------------------------------------------------------------------- files
def _write_npy(path: Path, array: np.ndarray) -> None:
    write_durable(path, npy_bytes(array))


def _write_record(path: Path, record: VoiceRecord) -> None:
    write_durable(path, record.to_bytes())


def _write_record_atomic(path: Path, record: VoiceRecord) -> None:
    write_atomic(path, record.to_bytes(), durable=True)
