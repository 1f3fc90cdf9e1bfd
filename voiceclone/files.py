"""Writing files so that a reader never sees half of one, and embeddings as plain `.npy` bytes."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np


def write_durable(path: Path, data: bytes) -> None:
    """Write and fsync a file (inside a staging folder that is renamed into place afterwards)."""
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def write_atomic(path: Path, data: bytes, durable: bool = False) -> None:
    """Replace `path` in one rename; `durable` also fsyncs the data first (library files, not caches)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    os.close(fd)
    try:
        if durable:
            write_durable(Path(tmp), data)
        else:
            Path(tmp).write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def npy_bytes(array: np.ndarray) -> bytes:
    """A float32 array as `.npy` bytes that load without pickle."""
    buf = io.BytesIO()
    np.save(buf, np.asarray(array, dtype=np.float32), allow_pickle=False)
    return buf.getvalue()
