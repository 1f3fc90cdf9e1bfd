"""How the CLI words what a voice's record says: its consent and the converters it holds data for."""

from __future__ import annotations

from voiceclone.responsible.consent.policy import speaker_summary
from voiceclone.voices.record import VoiceRecord


def consent_kind(consent) -> str:
    """ "spoken" (verified), "text" (unverified), or "-"."""
    if not consent:
        return "-"
    return str(consent.get("kind", "text")) if isinstance(consent, dict) else "text"


def consent_summary(consent) -> str:
    """One line on a voice's consent record: kind, whether verified, and how well it matched."""
    if not consent:
        return "none recorded"
    if isinstance(consent, str):  # voices enrolled before consent records
        return f"text (unverified): {_printable(consent)}"
    if consent.get("kind") == "spoken":
        words = f"spoken, verified ({consent.get('score', 0):.0%} match, {consent.get('source', '')})"
        return f"{words}, {speaker_summary(consent.get('speaker_check'))}"
    return f"{_printable(consent.get('kind', '?'))} (unverified): {_printable(consent.get('text', ''))}"


def _printable(value) -> str:
    """A stored value as text fit for a terminal: control characters (an imported archive's escape codes) shown as
    '?'."""
    return "".join(ch if ch.isprintable() else "?" for ch in str(value))


def converters_of(record: VoiceRecord) -> list[str]:
    """What a voice holds data for: OpenVoice versions (embeddings) and matcher versions (profiles)."""
    return sorted(record.embeddings) + sorted(record.profiles)
