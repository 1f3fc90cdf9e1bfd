"""What goes wrong with voices: the one-line error a user sees, and the damage found in a voice's files."""

from __future__ import annotations

from pathlib import Path

from voiceclone.errors import UserError


class VoiceError(UserError):
    """A voice name, voice folder or archive that cannot be used."""


class VoiceExists(VoiceError):
    """The name is taken (by a voice of that name, or of the same name in other letter case). `name` is the voice
    that holds it; the page answers 409 with a message of its own."""

    def __init__(self, message: str, name: str):
        super().__init__(message)
        self.name = name


class Damage(Exception):
    """A voice file that cannot be used; the message names the file and what is wrong with it."""


def damaged_error(name: str, root: Path, problem: str) -> VoiceError:
    """The error for a voice whose files are damaged: what is wrong and how to get the voice back."""
    return VoiceError(
        f"voice {name!r} in {root} is damaged ({problem}): remove it with `voiceclone voices rm {name} --yes` "
        f"and enroll it again"
    )
