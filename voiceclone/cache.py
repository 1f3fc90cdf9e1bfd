"""The user cache (`$VOICECLONE_CACHE_DIR`, else `$XDG_CACHE_HOME/voiceclone`, else `~/.cache/voiceclone`).

Holds what is slow to make and safe to lose: base-voice embeddings and file fingerprints.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from voiceclone.files import write_atomic

CACHE_DIR_ENV = "VOICECLONE_CACHE_DIR"


def cache_dir() -> Path:
    """The cache folder (created on demand by writers)."""
    explicit = os.environ.get(CACHE_DIR_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "voiceclone"


def file_sha256(path: Path) -> str:
    """SHA-256 of a large file, remembered by path, size and modification time (hashing 131 MB takes ~0.3 s)."""
    path = Path(path).resolve()
    stat = path.stat()
    key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
    index_path = cache_dir() / "fingerprints.json"
    try:
        index = json.loads(index_path.read_text())
    except (OSError, ValueError):
        index = {}
    if isinstance(index, dict) and isinstance(index.get(key), str):
        return index[key]
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    value = digest.hexdigest()
    index = index if isinstance(index, dict) else {}
    index[key] = value
    try:
        write_atomic(index_path, json.dumps(index).encode())
    except OSError:
        pass  # a read-only cache only costs the hashing next time
    return value
