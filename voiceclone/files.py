"""Writing files so that a reader never sees half of one, errors of the disk in one line, and embeddings as
plain `.npy` bytes."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from voiceclone.errors import UserError

# What the disk said, and what the user can do about it.
_DISK_ERRORS = {
    errno.ENOSPC: ("no space left on device", "free some space and try again"),
    errno.EDQUOT: ("disk quota exceeded", "free some space or ask for a larger quota, then try again"),
    errno.EFBIG: ("file too large for its file system", "write it to another file system"),
    errno.EROFS: ("read-only file system", "write it somewhere writable"),
    errno.EACCES: ("permission denied", "check the folder's permissions or write it somewhere else"),
    errno.EPERM: ("permission denied", "check the folder's permissions or write it somewhere else"),
}


class StorageError(UserError):
    """A file that cannot be written because of where it goes: a full disk, a quota, a read-only or forbidden place."""


def storage_error(exc: OSError, target: str | Path) -> StorageError | None:
    """The one-line error for a failed write to `target`, or None if the failure is not the disk's doing.

    Args:
        exc: What the write raised.
        target: What the user knows the file as (not a temporary name).
    """
    known = _DISK_ERRORS.get(exc.errno) if isinstance(exc, OSError) else None
    if known is None:
        return None
    what, todo = known
    return StorageError(f"{what} writing {target}: {todo}")


def write_error(exc: OSError, target: str | Path) -> StorageError:
    """The one-line error for any failed write to `target`: `storage_error`'s when the disk is to blame, else what
    the system said ("cannot write /proc/x: No such file or directory")."""
    known = storage_error(exc, target)
    if known is not None:
        return known
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.errno == errno.ENOTDIR:
        reason = "a part of the path is a file, not a folder"
    return StorageError(f"cannot write {target}: {reason}")


@contextlib.contextmanager
def reporting_write_errors(target: str | Path) -> Iterator[None]:
    """Turn any OSError met inside the block (a full disk, a quota, a forbidden, read-only or impossible place)
    into one `StorageError` line naming `target`: every command that writes reports the same way."""
    try:
        yield
    except OSError as exc:
        raise write_error(exc, target) from None


def output_folder(folder: str | Path) -> Path:
    """Make (if needed) the folder a command writes its outputs into (`eval -o DIR`); refuse in one line a path that
    is a file, runs through a file, or lies where nothing can be written.

    Returns:
        The folder, which exists.

    Raises:
        StorageError: it cannot be a folder or cannot be made.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise StorageError(f"{folder}: is a file, not a folder; give a folder for the outputs")
    with reporting_write_errors(folder):
        folder.mkdir(parents=True, exist_ok=True)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise StorageError(
            f"cannot write {folder}: permission denied; check the folder's permissions or write it somewhere else"
        )
    return folder


def rename_target(path: Path) -> Path:
    """Where a file written beside `path` and renamed into place must go: through a symbolic link to the file it
    points at (the link stays a link), never over something that is not a plain file.

    Renaming over a device or a pipe would replace it with a plain file (`-o /dev/null` run as root would destroy
    /dev/null); those are refused in one line.

    Raises:
        StorageError: `path` (or the end of its links) exists and is neither a plain file nor a folder, or the
            folder it would go into is a file.
    """
    path = Path(path)
    target = Path(os.path.realpath(path))
    if target.exists() and not target.is_file() and not target.is_dir():
        raise StorageError(
            f"{path}: is not a plain file (a device or a pipe) and will not be replaced; give a file name "
            "(`speak -o -` streams audio to standard output)"
        )
    if target.parent.exists() and not target.parent.is_dir():
        raise StorageError(f"{path.parent}: is a file, not a folder")
    return target


def create_temp(folder: Path, prefix: str, suffix: str = "") -> tuple[int, Path]:
    """A new empty file with a unique name in `folder`, open for writing, with the permissions the umask gives.

    `tempfile.mkstemp` always makes a private (0600) file, which would make an output renamed into place
    private whatever the user's umask.

    Returns:
        The open descriptor and the file's path.
    """
    for _ in range(100):
        path = Path(folder) / f"{prefix}{secrets.token_hex(4)}{suffix}"
        try:
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666), path
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary file name", str(folder))


def write_durable(path: Path, data: bytes) -> None:
    """Write and fsync a file (inside a staging folder that is renamed into place afterwards)."""
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def write_atomic(path: Path, data: bytes, durable: bool = False) -> None:
    """Replace `path` in one rename; `durable` also fsyncs the data first (library files, not caches)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = create_temp(path.parent, f".{path.name}-")
    os.close(fd)
    try:
        if durable:
            write_durable(tmp, data)
        else:
            tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def sha256_file(path: Path) -> str:
    """SHA-256 of a file of any size, read in blocks (`cache.file_sha256` remembers it for big checkpoints)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def npy_bytes(array: np.ndarray) -> bytes:
    """A float32 array as `.npy` bytes that load without pickle."""
    buf = io.BytesIO()
    np.save(buf, np.asarray(array, dtype=np.float32), allow_pickle=False)
    return buf.getvalue()
