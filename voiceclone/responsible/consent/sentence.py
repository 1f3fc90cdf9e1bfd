"""The consent sentence: its wording, the words it is compared by, and how long reading it takes.

The sentence (`consent_sentence`) names the speaker and the day::

    My name is Alice, and I agree that my voice may be cloned by voiceclone on November 21, 2026.

It was chosen from five candidates by how well Whisper tiny.en hears it when spoken by the bundled Piper voice (at
two speeds) and by espeak-ng (two voices), for six names: it had the lowest word error rates (Piper 3-5%,
espeak-ng 11-16% on average; "I, NAME, agree that ..." was misheard as "I read that ..." or lost its first words).
Its 19 fixed words (plus the name) also make one misheard word cost little (5%).

**Normalisation** (`words`), applied the same way to the expected sentence and to what Whisper heard, then
scored with `measures.word_error_rate` (jiwer: lower case, hyphens as spaces, punctuation removed):

- "voiceclone", "voice-clone" and "Voice Clone" are the same two words "voice clone" (Whisper writes two words);
- ordinal suffixes after digits are dropped ("21st" is "21") and digit groups lose their commas ("2,026" is
  "2026"). Whisper tiny.en writes a spoken date in digits ("November 21, 2026" when Piper reads "November
  twenty-one, twenty twenty-six", "November 21st, 2026" for "twenty-first"), so the sentence shows the date in
  digits and number words need no parsing. A speaker who says "the twenty-first of November" costs two words.

**How long it takes**: the first `consent_window_seconds` of a recording are searched for it: its words at
`READING_WPS` plus `LEAD_SECONDS`.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date

from voiceclone.responsible.consent.policy import ConsentError

TEMPLATE = "My name is {name}, and I agree that my voice may be cloned by voiceclone on {date}."
NAME_IN_TEMPLATE = re.compile(r"^\s*My name is (?P<name>.+?), and I agree\b", re.IGNORECASE)
_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip

READING_WPS = 2.0  # a slow reading pace, words per second (Piper reads ~3, people read 2-3 aloud)
LEAD_SECONDS = 4.0  # time before and pauses within the sentence, seconds


def consent_sentence(name: str, on: date) -> str:
    """The sentence a speaker reads to consent, with their name and the day.

    Args:
        name: the speaker's name as they will say it (e.g. "Alice" or "Jean-Luc Picard"); spaces are tidied.
        on: the day of the consent; written in English with the day and year in digits ("November 21, 2026"),
            as Whisper writes a spoken date, so that the two compare word for word.

    Returns:
        e.g. "My name is Alice, and I agree that my voice may be cloned by voiceclone on November 21, 2026."

    Raises:
        ConsentError: the name has no letter in it, or letters of a script other than Latin.
    """
    clean = unicodedata.normalize("NFC", " ".join(str(name).split()))
    if not any(ch.isalpha() for ch in clean):
        raise ConsentError(f"the consent sentence needs the speaker's name, got {clean!r}")
    if not latin_letters(clean):
        raise ConsentError(
            f"write the speaker's name in Latin letters (as it sounds in English), got {clean!r}: the sentence is "
            "checked by an English speech recognizer, which never writes other scripts"
        )
    return TEMPLATE.format(name=clean, date=f"{_MONTHS[on.month - 1]} {on.day}, {on.year}")


def latin_letters(name: str) -> bool:
    """Whether every letter of `name` is a Latin one ("Zoë", "José" yes; "张伟" no): the only script Whisper's
    English model writes, so the only one a read sentence can be checked against."""
    return all(not ch.isalpha() or unicodedata.name(ch, "").startswith("LATIN") for ch in name)


def consent_window_seconds(expected: str) -> float:
    """How much of a recording's start is searched for the sentence, in seconds.

    The sentence's words read at `READING_WPS` (a slow pace) plus `LEAD_SECONDS` for a pause before it and
    between its words: 14 s for the sentence with a one-word name (20 words).
    """
    return len(words(expected)) / READING_WPS + LEAD_SECONDS


def words(text: str) -> list[str]:
    """`text` as the normalised words that are compared (see the module docstring).

    Args:
        text: any English text.

    Returns:
        Lower-case words without punctuation; "voiceclone" becomes "voice", "clone"; "21st" becomes "21".
    """
    text = re.sub(r"(?i)\bvoice[\s\-\u2010-\u2015]*clone\b", "voice clone", text)
    text = re.sub(r"(?i)(\d)(st|nd|rd|th)\b", r"\1", text)
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)
    text = re.sub(r"[-\u2010-\u2015]", " ", text.lower())  # as word_error_rate: "well-known" is two words
    text = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text)
    return text.split()


def speaker_from_voice_name(voice_name: str) -> str:
    """A person's name to put in the sentence when none is given: "alice-studio" -> "Alice", "alice2" -> "Alice"."""
    first = re.split(r"[-_.\s]+", voice_name.strip())[0]
    first = re.sub(r"\d+", "", first) or first  # a number tells takes apart, no one says it as part of a name
    return first[:1].upper() + first[1:] if first else voice_name
