"""A voice by name, with its consent policy applied: what `--voice` names (`find_voice`), and the one check every
path that speaks in an enrolled voice makes first (`allowed_voice`: `speak`, `bot`, a mid-call switch, the page).
"""

from __future__ import annotations

from pathlib import Path

from voiceclone.audio.reader import AudioError
from voiceclone.responsible.consent.policy import ConsentPolicy, check_policy
from voiceclone.voices.errors import VoiceError
from voiceclone.voices.folder import Voice
from voiceclone.voices.names import check_name
from voiceclone.voices.store import VoiceLibrary

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif"}


def voice_file(voice: str) -> Path | None:
    """The audio file `--voice` names, or None when it names an enrolled voice (see `find_voice`)."""
    path = Path(voice).expanduser()
    if path.suffix.lower() in AUDIO_SUFFIXES or "/" in voice or path.exists():
        if not path.exists():
            raise AudioError(f"{path}: voice file not found")
        return path
    return None


def find_voice(library: VoiceLibrary, voice: str) -> Path | Voice:
    """What `--voice` names: an audio file to clone on the fly, or an enrolled voice.

    A value with an audio suffix or a `/`, or naming something that exists, is a file; anything else is a
    voice name. Either must exist: the error says which was looked for.

    Args:
        library: Where enrolled voices are looked up.
        voice: The value given.

    Returns:
        The file's path, or the stored voice.
    """
    path = voice_file(voice)
    return path if path is not None else library.get(voice)


def allowed_voice(library: VoiceLibrary, name, policy: ConsentPolicy, untrusted: bool = False) -> Voice:
    """An enrolled, usable voice the consent policy allows; else a one-line `UserError`.

    Args:
        library: Where the voice is looked up.
        name: The voice's name.
        policy: The consent policy (`required` refuses a voice without verified spoken consent).
        untrusted: `name` comes from a caller of the page (any JSON value): an unknown one is answered with the
            voices there are, never the library's folder.

    Returns:
        The voice.
    """
    if untrusted:
        names = library.names()
        if check_name(name) not in names:
            raise VoiceError(f"no voice named {name!r} (voices: {', '.join(names) or 'none'})")
    voice = library.get(name)  # a damaged one says what is wrong
    check_policy(policy, voice.record.consent, f"voice {name!r}")
    return voice
