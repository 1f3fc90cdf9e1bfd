"""A voice packed for another machine: the .tar.gz that `voiceclone voices export` writes and `voices import`
reads. An archive to import is untrusted: one voice folder of plain files with a voice's file names, within the
sizes a voice can have, read in one pass (a compressed stream is never rewound) and read to its end."""

from __future__ import annotations

import io
import lzma
import os
import tarfile
import zlib
from pathlib import Path

from voiceclone.files import create_temp
from voiceclone.voices.errors import Damage, VoiceError
from voiceclone.voices.names import (
    MAX_SMALL_FILE,
    MAX_SPEECH_BYTES,
    MAX_VOICE_BYTES,
    META_FILE,
    MIB,
    SPEECH_FILE,
    is_embedding_file,
    is_profile_file,
    is_voice_file,
)
from voiceclone.voices.record import VoiceRecord, parse_embedding, parse_profile
from voiceclone.voices.speech_file import decode_speech

_MAX_ARCHIVE_TAIL = MIB  # padding after a tar's last file (a few KiB in practice)
_STREAM_ERRORS = (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError)


def write_archive(archive: Path, name: str, files: dict[str, tuple[bytes, float]]) -> None:
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


def read_archive(archive: Path) -> tuple[str, dict[str, bytes]]:
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
        limit = MAX_SPEECH_BYTES if parts[1] == SPEECH_FILE else MAX_SMALL_FILE
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
    if len(parts) != 2 or not is_voice_file(parts[1]):
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


def check_voice_files(files: dict[str, bytes], archive: Path) -> VoiceRecord:
    """Every file of an imported voice decodes and is what its name says; returns the voice's description."""
    try:
        record = VoiceRecord.parse(files[META_FILE])
        if SPEECH_FILE not in files:
            raise Damage(f"{SPEECH_FILE} is missing")
        decode_speech(io.BytesIO(files[SPEECH_FILE]))
        for file_name, data in files.items():
            if is_embedding_file(file_name):
                parse_embedding(data, file_name)
            elif is_profile_file(file_name):
                parse_profile(data, file_name)
    except Damage as damage:
        raise VoiceError(f"{archive}: the voice in it is damaged ({damage}); export it again") from None
    return record
