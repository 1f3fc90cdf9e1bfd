"""The consent policy and the consent records a voice stores: what is kept, and what is refused.

**Policy** (`ConsentPolicy`, the `consent:` config key): `recorded` (default) keeps whatever consent is given,
verified or not; `required` refuses a voice without verified spoken consent whose speaker check passed (the
consent's speaker is the cloned voice's: `consent.speaker`) (`check_policy`); `off` records no consent at all
(enroll stores none, nothing refuses: `stored_consent` returns None).

A record is either a verified spoken consent (`ConsentRecord`, made by `consent.verify`) or text consent
(`text_consent`), kept as said and never verified.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Literal, get_args

from voiceclone.errors import UserError
from voiceclone.tts.text import speakable

ConsentPolicy = Literal["required", "recorded", "off"]
CONSENT_POLICIES: tuple[str, ...] = get_args(ConsentPolicy)
DEFAULT_POLICY: ConsentPolicy = "recorded"

MAX_WER = 0.25  # fraction of the sentence's words; see the docstring of consent.verify
SOURCES = ("recording start", "separate file", "browser page")


class ConsentError(UserError):
    """Consent is missing, was not recognised, or a policy refuses; one line that says what and what to do."""


@dataclass(frozen=True)
class ConsentRecord:
    """A verified spoken consent, as stored in a voice's `voice.json` under "consent" (`to_dict`).

    Fields:
        kind: "spoken".
        verified: True (only accepted consent makes a record).
        expected: the sentence the speaker was asked to read.
        transcript: everything Whisper heard in the part of the audio that was checked.
        heard: the stretch of `transcript` that matched the sentence (Whisper's own words).
        score: 1 - wer, in [0, 1] (1 is every word heard).
        wer: word error rate of `heard` against `expected` after normalisation, >= 0.
        threshold: the highest word error rate accepted (`MAX_WER`).
        name: the name that had to be heard; name_similarity: how well it was heard, in [0, 1].
        time: when it was checked, UTC, ISO 8601 to the second.
        audio_sha256: hex SHA-256 of the consent audio; audio_hashed says of what: "file bytes" (the exact bytes
            of the file or upload given) or "float32 samples" (the little-endian float32 samples as given, at
            `sample_rate`).
        sample_rate: the rate of the audio given, Hz.
        source: "recording start", "separate file" or "browser page".
        checked_seconds: seconds of audio transcribed (from its start).
        recogniser: the speech recogniser used.
        speaker_check: whether the consent's speaker is the sample's (`SpeakerCheck.to_dict` from
            `consent.speaker`): passed, score, threshold, method, ...; None until it is made.
    """

    kind: str
    verified: bool
    expected: str
    transcript: str
    heard: str
    score: float
    wer: float
    threshold: float
    name: str | None
    name_similarity: float | None
    time: str
    audio_sha256: str
    audio_hashed: str
    sample_rate: int
    source: str
    checked_seconds: float
    recogniser: str
    speaker_check: dict | None = None

    def to_dict(self) -> dict:
        """The JSON-ready record (what a voice stores)."""
        return asdict(self)


def text_consent(text: str) -> dict:
    """The record of a consent given as text (`--consent "..."`): kept as said, not verified.

    Args:
        text: what the user typed, e.g. "Alice agreed to be cloned, 2026-11-21".

    Returns:
        {"kind": "text", "verified": False, "text": the text (spaces tidied), "time": UTC ISO 8601}.

    Raises:
        ConsentError: the text is empty.
    """
    clean = " ".join(speakable(str(text)).split())  # no terminal escape codes kept to be printed later
    if not clean:
        raise ConsentError('--consent needs the consent as text, e.g. --consent "Alice agreed on 2026-11-21"')
    return {"kind": "text", "verified": False, "text": clean, "time": utc_now()}


def is_verified(consent_record: dict | None) -> bool:
    """Whether a stored consent record is verified spoken consent from the cloned voice's own speaker (what
    `consent: required` asks for): the sentence was heard and the speaker check passed."""
    return words_verified(consent_record) and speaker_verified(consent_record)


def words_verified(consent_record: dict | None) -> bool:
    """Whether the record is spoken consent whose sentence was heard within the word error rate allowed."""
    return (
        isinstance(consent_record, dict)
        and consent_record.get("kind") == "spoken"
        and consent_record.get("verified") is True
        and isinstance(consent_record.get("wer"), (int, float))
        and consent_record["wer"] <= consent_record.get("threshold", MAX_WER)
    )


def speaker_verified(consent_record: dict | None) -> bool:
    """Whether the record's speaker check was made and passed (older records have none)."""
    check = consent_record.get("speaker_check") if isinstance(consent_record, dict) else None
    return isinstance(check, dict) and check.get("passed") is True


def speaker_summary(check) -> str:
    """How a spoken consent's speaker check came out, in a few words."""
    if not isinstance(check, dict):
        return "speaker not checked (an older or imported record)"
    if check.get("method") == "sentence is the sample":
        return "same speaker (the sentence is the sample)"
    score = check.get("score")
    score = f" ({score:.2f})" if isinstance(score, (int, float)) else ""
    return f"same speaker{score}" if check.get("passed") is True else f"speaker check FAILED{score}"


def check_policy(policy: ConsentPolicy, consent_record: dict | None, what: str) -> None:
    """Refuse, in one line, what the consent policy does not allow; return quietly otherwise.

    `recorded` and `off` never refuse. `required` refuses anything without verified spoken consent.

    Args:
        policy: "required", "recorded" or "off" (the config's `consent:`).
        consent_record: the stored record (a dict from `ConsentRecord.to_dict` or `text_consent`, an older
            voice's plain text, or None).
        what: what is being refused, for the message, e.g. "voice 'bob'" or "the recording me.wav".

    Raises:
        ConsentError: the policy refuses.
        ValueError: `policy` is not one of `CONSENT_POLICIES` (the config validates it first).
    """
    if policy not in CONSENT_POLICIES:
        raise ValueError(f"consent policy must be one of {', '.join(CONSENT_POLICIES)}, got {policy!r}")
    if policy != "required" or is_verified(consent_record):
        return
    if not consent_record:
        has = "it has no consent record"
    elif isinstance(consent_record, dict) and consent_record.get("kind") == "text":
        has = "its consent is text only (not verified)"
    elif words_verified(consent_record) and not isinstance(consent_record.get("speaker_check"), dict):
        has = "its spoken consent's speaker was never checked against the voice (an older or imported record)"
    elif words_verified(consent_record):
        has = "its spoken consent failed the speaker check (another voice read the sentence)"
    else:
        has = "it has no verified spoken consent"
    raise ConsentError(
        f"consent: required refuses {what}: {has}; enroll it with spoken consent, --consent-phrase or "
        "--consent-audio (see voiceclone enroll --help), or set consent: recorded"
    )


def stored_consent(policy: ConsentPolicy, consent_record: dict | None) -> dict | None:
    """What a voice stores under the policy: nothing at all with `off`, else the record as given."""
    return None if policy == "off" else consent_record


def utc_now() -> str:
    """Now, UTC, ISO 8601 to the second: the time a consent record carries."""
    return datetime.now(UTC).isoformat(timespec="seconds")
