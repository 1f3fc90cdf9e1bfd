"""The names in a voice library: a voice's name, the files of its folder, their size limits, and the library's
folder (`--voices-dir`, `$VOICECLONE_VOICES_DIR`, the config, `./voices`)."""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path

from voiceclone.voices.errors import VoiceError

VOICES_DIR_ENV = "VOICECLONE_VOICES_DIR"
META_FILE = "voice.json"
SPEECH_FILE = "speech.flac"

# Enrollment keeps at most this much speech, the cleanest of it. The embedding is the mean of the converter's
# embeddings of ~10 s pieces; the mean settles within a minute or two of speech, so 5 minutes (30 pieces) is
# ample, while an hour would only cost memory, time and disk (and make exports too large to move).
MAX_SPEECH_S = 300.0
MAX_SAMPLE_RATE = 48000  # the highest rate a converter works at (OpenVoice: 22050)

MIB = 1024 * 1024
MAX_SMALL_FILE = MIB  # voice.json, an embedding, a profile
# What export can produce, and so what import accepts: the speech as 24-bit FLAC, which at worst stores samples
# verbatim (3 bytes each) plus frame headers, voice.json and up to 16 embeddings and profiles, with a margin.
MAX_SPEECH_BYTES = int(MAX_SPEECH_S * MAX_SAMPLE_RATE * 3 * 1.02) + MIB
MAX_VOICE_BYTES = MAX_SPEECH_BYTES + 17 * MAX_SMALL_FILE

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_EMBEDDING_FILE = re.compile(r"embedding-(v\d+)\.npy")
_PROFILE_FILE = re.compile(r"profile-(m\d+)\.json")
_ALLOWED_FILES = re.compile(rf"{re.escape(META_FILE)}|{re.escape(SPEECH_FILE)}|embedding-v\d+\.npy|profile-m\d+\.json")


def check_name(name: str) -> str:
    """A voice name is 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit."""
    if not isinstance(name, str) or not valid_name(name):
        shown = repr(name)
        shown = shown if len(shown) <= 80 else f"{shown[:72]}... ({len(str(name))} characters)"  # a page's 20,000
        raise VoiceError(
            f"bad voice name {shown}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


def valid_name(name: str) -> bool:
    """Whether `name` is a voice name (`check_name` without the error)."""
    return bool(_NAME.fullmatch(name)) and ".." not in name


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


def is_embedding_file(name: str) -> bool:
    """Whether `name` is the file name of an embedding."""
    return bool(_EMBEDDING_FILE.fullmatch(name))


def is_profile_file(name: str) -> bool:
    """Whether `name` is the file name of a profile."""
    return bool(_PROFILE_FILE.fullmatch(name))


def is_voice_file(name: str) -> bool:
    """Whether `name` is one of a voice folder's files (nothing else is read, exported or imported)."""
    return bool(_ALLOWED_FILES.fullmatch(name))


def default_voices_dir(explicit: str | Path | None = None, configured: str | Path | None = None) -> Path:
    """`--voices-dir`, else `$VOICECLONE_VOICES_DIR`, else the config's `voices_dir`, else `./voices`."""
    chosen = explicit or os.environ.get(VOICES_DIR_ENV) or configured or "voices"
    return Path(chosen).expanduser()


def default_name(path: str | Path) -> str:
    """A voice name from a file name: its stem, accents dropped (José -> Jose), other characters a name may not
    hold replaced by '-'."""
    plain = "".join(ch for ch in unicodedata.normalize("NFKD", Path(path).stem) if not unicodedata.combining(ch))
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", plain).strip("-._")
    return stem[:64] or "voice"
