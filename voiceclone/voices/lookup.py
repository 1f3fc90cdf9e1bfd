"""A voice by name, with its consent policy applied: what `--voice` names (`find_voice`), and the one check every
path that speaks in an enrolled voice makes first (`allowed_voice`: `speak`, `bot`, a mid-call switch, the page).

Light on purpose (no torch, no Pipecat): the CLI makes these checks before it loads the layers that do the work,
so that a wrong voice name is refused at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from voiceclone.audio.reader import AudioError
from voiceclone.config.sections import TTSConfig
from voiceclone.errors import UserError
from voiceclone.responsible.consent.policy import ConsentPolicy, check_policy
from voiceclone.voices.errors import VoiceError
from voiceclone.voices.folder import Voice
from voiceclone.voices.names import check_name, default_name
from voiceclone.voices.store import VoiceLibrary

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif"}


def voice_file(voice: str, library: VoiceLibrary) -> Path | None:
    """The audio file `--voice` names, or None when it names an enrolled voice (see `find_voice`)."""
    path = Path(voice).expanduser()
    if path.suffix.lower() in AUDIO_SUFFIXES or "/" in voice:
        if not path.exists():
            raise AudioError(f"{path}: voice file not found")
        return path
    # A bare word is the enrolled voice when there is one: a stray file of that name in the current folder must
    # not be cloned in its place (it has none of the voice's consent); `./name` still names the file.
    if _is_enrolled(library, voice) or not path.exists():
        return None
    return path


def _is_enrolled(library: VoiceLibrary, voice: str) -> bool:
    try:
        return library.exists(library.stored_name(voice))
    except VoiceError:  # not a name a voice can have
        return False


def find_voice(library: VoiceLibrary, voice: str) -> Path | Voice:
    """What `--voice` names: an audio file to clone on the fly, or an enrolled voice.

    A value with an audio suffix or a `/` is a file; a bare word is an enrolled voice, or else a file of that
    name if one exists. Either must exist: the error says which was looked for.

    Args:
        library: Where enrolled voices are looked up.
        voice: The value given.

    Returns:
        The file's path, or the stored voice.
    """
    path = voice_file(voice, library)
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


def check_voice_given(tts: TTSConfig, no_clone: bool) -> None:
    """A cloned run needs a voice."""
    if not no_clone and not tts.voice:
        raise UserError("say whose voice: --voice NAME (see `voiceclone voices list`) or --voice sample.wav")


def check_consent(policy: str, library: VoiceLibrary, voice: str) -> None:
    """Refuse a voice the consent policy does not allow (`required`: verified spoken consent), in one line.

    Args:
        policy: The config's `consent` (required, recorded, off).
        library: Where enrolled voices are looked up.
        voice: `--voice`: an enrolled name or an audio file (a file carries no consent record).
    """
    path = voice_file(voice, library)
    if path is not None:
        check_policy(policy, None, f"the voice file {path.name}")
    else:
        allowed_voice(library, voice, policy)


def choose_name(library: VoiceLibrary, paths: Sequence[str | Path], name: str | None, force: bool) -> str:
    """The voice's name (default: the first file's stem), checked, and free unless `force`."""
    if not paths:
        raise VoiceError("give at least one recording to enroll")
    name = check_name(name if name is not None else default_name(paths[0]))
    library.ensure_free(name, force)  # fail before the work; `save` checks again
    return name
