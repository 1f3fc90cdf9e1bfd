"""Consent to be cloned: a sentence the speaker reads aloud, checked with the local Whisper model, and a policy.

The sentence (`consent_sentence`) names the speaker and the day::

    My name is Alice, and I agree that my voice may be cloned by voiceclone on November 21, 2026.

It was chosen from five candidates by how well Whisper tiny.en hears it when spoken by the bundled Piper voice (at
two speeds) and by espeak-ng (two voices), for six names: it had the lowest word error rates (Piper 3-5%,
espeak-ng 11-16% on average; "I, NAME, agree that ..." was misheard as "I read that ..." or lost its first words).
Its 19 fixed words (plus the name) also make one misheard word cost little (5%).

**Normalisation** (`words`), applied the same way to the expected sentence and to what Whisper heard, then
scored with `evaluation.word_error_rate` (jiwer: lower case, hyphens as spaces, punctuation removed):

- "voiceclone", "voice-clone" and "Voice Clone" are the same two words "voice clone" (Whisper writes two words);
- ordinal suffixes after digits are dropped ("21st" is "21") and digit groups lose their commas ("2,026" is
  "2026"). Whisper tiny.en writes a spoken date in digits ("November 21, 2026" when Piper reads "November
  twenty-one, twenty twenty-six", "November 21st, 2026" for "twenty-first"), so the sentence shows the date in
  digits and number words need no parsing. A speaker who says "the twenty-first of November" costs two words.

**Acceptance**: the word error rate between the sentence and the best-matching stretch of what was heard (up to
`MAX_LEAD_WORDS` words may come before it, anything after it: a recording goes on with other speech) must be at
most `MAX_WER` (25%: tiny.en mishears up to three of the ~20 words of a clearly read sentence: 0-14% for Piper,
up to 19% for espeak-ng's default voice and 29% for its female voice at 150 words a minute; a different sentence
scores near 100%, 95% in our test), and the speaker's name must be heard: `NAME_MIN_SIMILARITY` of its sounds
(espeak-ng phonemes, through the phonemizer inside piper-tts) must match the word or two heard where the name
belongs, so that "Gene Luke" is heard as "Jean-Luc" but "Bob" never as "Alice" (a different name is one word:
its word error rate alone, 5%, would pass). The date counts only through the word error rate: the sentence read
with another date (three words, 15%) passes, and the record keeps what was heard.

**Where the sentence is**: at the start of a recording (the first `consent_window_seconds` of it are
transcribed: the words at `READING_WPS` plus `LEAD_SECONDS`), or a separate file (its first `MAX_FILE_SECONDS`).
Enrollment uses the **whole recording, consent sentence included**, as the cloning sample (as Hugging Face's voice
consent gate does): it is the speaker's own voice, and it ties the consent to the very audio that is cloned. A
caller that wants the rest only can ask `locate_consent_end` where the sentence ends (a second, slower Whisper pass
with word timestamps: checking itself decodes without timestamps, which hears dates better: with them tiny.en
dropped the year of an espeak-ng reading and heard "21, in 2026" in a Piper one).

**Policy** (`ConsentPolicy`, the `consent:` config key): `recorded` (default) keeps whatever consent is given,
verified or not; `required` refuses a voice without verified spoken consent (`check_policy`); `off` records no
consent at all (enroll stores none, nothing refuses: `stored_consent` returns None).
"""

from __future__ import annotations

import hashlib
import re
import threading
import unicodedata
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Literal

import numpy as np

from voiceclone.audio.reader import load_audio, resample
from voiceclone.errors import UserError

ConsentPolicy = Literal["required", "recorded", "off"]
CONSENT_POLICIES: tuple[str, ...] = ("required", "recorded", "off")
DEFAULT_POLICY: ConsentPolicy = "recorded"

TEMPLATE = "My name is {name}, and I agree that my voice may be cloned by voiceclone on {date}."
_NAME_IN_TEMPLATE = re.compile(r"^\s*My name is (?P<name>.+?), and I agree\b", re.IGNORECASE)
_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip

MAX_WER = 0.25  # fraction of the sentence's words; see the module docstring
NAME_MIN_SIMILARITY = 0.5  # share of the name's phonemes that must match (1 - edit distance / length)
MAX_LEAD_WORDS = 6  # words heard before the sentence that are ignored ("OK, so, um, ...")
READING_WPS = 2.0  # a slow reading pace, words per second (Piper reads ~3, people read 2-3 aloud)
LEAD_SECONDS = 4.0  # time before and pauses within the sentence, seconds
MAX_FILE_SECONDS = 60.0  # a separate consent file is transcribed up to here, seconds
WHISPER_RATE = 16000  # Hz
RECOGNISER = "whisper tiny.en (faster-whisper, int8, CPU)"
SOURCES = ("recording start", "separate file", "browser page")

_phonemizer = None
_phonemizer_lock = threading.Lock()


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

    def to_dict(self) -> dict:
        """The JSON-ready record (what a voice stores)."""
        return asdict(self)


# ------------------------------------------------------------------------------------------------ sentence
def consent_sentence(name: str, on: date) -> str:
    """The sentence a speaker reads to consent, with their name and the day.

    Args:
        name: the speaker's name as they will say it (e.g. "Alice" or "Jean-Luc Picard"); spaces are tidied.
        on: the day of the consent; written in English with the day and year in digits ("November 21, 2026"),
            as Whisper writes a spoken date, so that the two compare word for word.

    Returns:
        e.g. "My name is Alice, and I agree that my voice may be cloned by voiceclone on November 21, 2026."

    Raises:
        ConsentError: the name has no letter in it.
    """
    clean = " ".join(str(name).split())
    if not any(ch.isalpha() for ch in clean):
        raise ConsentError(f"the consent sentence needs the speaker's name, got {clean!r}")
    return TEMPLATE.format(name=clean, date=f"{_MONTHS[on.month - 1]} {on.day}, {on.year}")


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


# ------------------------------------------------------------------------------------------------ checking
def verify_spoken_consent(
    audio: np.ndarray,
    sample_rate: int,
    expected: str,
    at_start: bool = True,
    *,
    name: str | None = None,
    source: str | None = None,
    file_sha256: str | None = None,
) -> ConsentRecord:
    """Check that `audio` holds the consent sentence, spoken; return the record to store, or refuse.

    Args:
        audio: mono float samples in [-1, 1], any length.
        sample_rate: their rate in Hz (resampled to 16 kHz for Whisper).
        expected: the sentence to be heard (from `consent_sentence`).
        at_start: True: the sentence opens a longer recording, and only its first `consent_window_seconds`
            are transcribed; False: `audio` is a separate consent recording (its first `MAX_FILE_SECONDS`).
        name: the name that must be heard; None takes it from `expected` when it follows `TEMPLATE`, else no
            name is checked.
        source: what the record says the audio was; None: "recording start" or "separate file" from `at_start`.
        file_sha256: hex SHA-256 of the file or upload the audio was decoded from (then the record hashes "file
            bytes"); None hashes the float32 samples.

    Returns:
        The `ConsentRecord` of an accepted consent.

    Raises:
        ConsentError: nothing was heard, the words do not match closely enough, or the name was not heard; the
            one-line message shows what was heard.
        TranscriberMissing / EvaluationUnavailable: the Whisper model or jiwer is not installed.
        ValueError: `audio` is not one-dimensional, the rate is not positive, or `expected` has no words.
    """
    samples = np.asarray(audio, dtype=np.float32)
    if samples.ndim != 1:
        raise ValueError(f"consent audio must be mono (one dimension), got shape {samples.shape}")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    target = words(expected)
    if not target:
        raise ValueError("the expected consent sentence has no words")
    if name is None:
        found = _NAME_IN_TEMPLATE.match(expected)
        name = found.group("name") if found else None
    source = source or ("recording start" if at_start else "separate file")
    digest = file_sha256 or hashlib.sha256(np.ascontiguousarray(samples, dtype="<f4").tobytes()).hexdigest()

    limit = consent_window_seconds(expected) if at_start else MAX_FILE_SECONDS
    part = samples[: int(round(limit * sample_rate))]
    where = f"the first {part.size / sample_rate:.1f} s of the recording" if at_start else "the consent recording"
    transcript, tokens, speech_seconds = _transcribe(part, sample_rate)
    heard_words = [(w, i) for i, (token, _, _) in enumerate(tokens) for w in words(token)]
    if speech_seconds <= 0 or not heard_words:
        what = "nothing was heard" if speech_seconds <= 0 else "speech was found but no words were recognised"
        raise ConsentError(
            f'consent not recognised: {what} in {where}; read aloud "{expected}"'
            + (" at the start of the recording" if at_start else "")
        )

    wer, lo, hi = _best_span(target, [w for w, _ in heard_words])
    first_token, last_token = heard_words[lo][1], heard_words[hi - 1][1]
    heard = "".join(token for token, _, _ in tokens[first_token : last_token + 1]).strip()
    similarity = _name_similarity(name, target, [w for w, _ in heard_words[lo:hi]]) if name else None
    if wer > MAX_WER:
        raise ConsentError(
            f'consent not recognised: expected "{expected}" but heard "{transcript}" '
            f"(word error rate {wer:.0%}, at most {MAX_WER:.0%} allowed)"
        )
    if similarity is not None and similarity < NAME_MIN_SIMILARITY:
        raise ConsentError(
            f'consent not recognised: the name "{name}" was not heard in "{heard}" (expected "{expected}")'
        )
    return ConsentRecord(
        kind="spoken",
        verified=True,
        expected=expected,
        transcript=transcript,
        heard=heard,
        score=round(max(0.0, 1.0 - wer), 4),
        wer=round(wer, 4),
        threshold=MAX_WER,
        name=name,
        name_similarity=None if similarity is None else round(similarity, 3),
        time=_now(),
        audio_sha256=digest,
        audio_hashed="file bytes" if file_sha256 else "float32 samples",
        sample_rate=int(sample_rate),
        source=source,
        checked_seconds=round(part.size / sample_rate, 3),
        recogniser=RECOGNISER,
    )


def verify_consent_file(
    path: str | Path, expected: str, at_start: bool = False, *, name: str | None = None, source: str | None = None
) -> ConsentRecord:
    """`verify_spoken_consent` on an audio file, with the SHA-256 of the file's exact bytes in the record.

    Args:
        path: a WAV, FLAC, OGG or MP3 file.
        expected: the sentence to be heard.
        at_start: True when the file is the recording to clone and the sentence opens it (`--consent-phrase`);
            False for a separate consent recording (`--consent-audio FILE`).
        name, source: as for `verify_spoken_consent`.

    Raises:
        AudioError: the file cannot be read as audio.
        ConsentError: as for `verify_spoken_consent`.
    """
    path = Path(path)
    audio, rate = load_audio(path)  # checks the file first (missing, empty, a folder, damaged)
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return verify_spoken_consent(
        audio, rate, expected, at_start, name=name, source=source, file_sha256=digest.hexdigest()
    )


def locate_consent_end(audio: np.ndarray, sample_rate: int, expected: str) -> float | None:
    """Where the consent sentence at the start of a recording ends, for a caller that wants only the rest.

    Enrollment does not need it (the whole recording is the sample); it costs a second Whisper pass with word
    timestamps (about twice the time of the check).

    Args:
        audio: the recording, mono float samples in [-1, 1].
        sample_rate: its rate in Hz.
        expected: the sentence.

    Returns:
        Seconds from the start of `audio` to the end of the sentence's last word heard (Whisper's word times are
        good to about 0.1-0.3 s), or None when nothing was heard.
    """
    samples = np.asarray(audio, dtype=np.float32)
    part = samples[: int(round(consent_window_seconds(expected) * sample_rate))]
    _, tokens, _ = _transcribe(part, sample_rate, word_times=True)
    heard_words = [(w, i) for i, (token, _, _) in enumerate(tokens) for w in words(token)]
    if not heard_words:
        return None
    _, _, hi = _best_span(words(expected), [w for w, _ in heard_words])
    return round(float(tokens[heard_words[hi - 1][1]][2]), 3)


def text_consent(text: str) -> dict:
    """The record of a consent given as text (`--consent "..."`): kept as said, not verified.

    Args:
        text: what the user typed, e.g. "Alice agreed to be cloned, 2026-11-21".

    Returns:
        {"kind": "text", "verified": False, "text": the text (spaces tidied), "time": UTC ISO 8601}.

    Raises:
        ConsentError: the text is empty.
    """
    clean = " ".join(str(text).split())
    if not clean:
        raise ConsentError('--consent needs the consent as text, e.g. --consent "Alice agreed on 2026-11-21"')
    return {"kind": "text", "verified": False, "text": clean, "time": _now()}


# -------------------------------------------------------------------------------------------------- policy
def is_verified(consent_record: dict | None) -> bool:
    """Whether a stored consent record is a verified spoken consent (what `consent: required` asks for)."""
    return (
        isinstance(consent_record, dict)
        and consent_record.get("kind") == "spoken"
        and consent_record.get("verified") is True
        and isinstance(consent_record.get("wer"), (int, float))
        and consent_record["wer"] <= consent_record.get("threshold", MAX_WER)
    )


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
    else:
        has = "it has no verified spoken consent"
    raise ConsentError(
        f"consent: required refuses {what}: {has}; re-enroll with --consent-phrase "
        "(see voiceclone enroll --help) or set consent: recorded"
    )


def stored_consent(policy: ConsentPolicy, consent_record: dict | None) -> dict | None:
    """What a voice stores under the policy: nothing at all with `off`, else the record as given."""
    return None if policy == "off" else consent_record


# ------------------------------------------------------------------------------------------------ internals
def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _transcribe(audio: np.ndarray, sample_rate: int, word_times: bool = False) -> tuple[str, list[tuple], float]:
    """Whisper on `audio`: (transcript, [(word token, start s, end s)], seconds of speech its VAD found).

    Without `word_times` the tokens are the transcript's words and their times None.
    """
    from voiceclone.quality.transcribe import load_model

    samples = np.clip(np.nan_to_num(audio, nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0)
    if samples.size < sample_rate // 10:  # under 0.1 s: nothing to hear
        return "", [], 0.0
    samples = resample(samples, int(sample_rate), WHISPER_RATE)
    model = load_model()
    # The decoding of transcribe.transcribe (beam 5, no conditioning on earlier text, no timestamps unless word
    # times are asked for) plus Whisper's Silero VAD (bundled with faster-whisper, no download): on silence or
    # hum Whisper alone "hears" words such as "You".
    segments, info = model.transcribe(
        samples,
        beam_size=5,
        condition_on_previous_text=False,
        without_timestamps=not word_times,
        word_timestamps=word_times,
        vad_filter=True,
    )
    segments = list(segments)
    text = " ".join(s.text.strip() for s in segments).strip()
    if word_times:
        tokens = [(w.word, float(w.start), float(w.end)) for s in segments for w in (s.words or [])]
    else:
        tokens = [(" " + token, None, None) for token in text.split()]
    return text, tokens, float(info.duration_after_vad)


def _best_span(target: list[str], heard: list[str]) -> tuple[float, int, int]:
    """The stretch heard[lo:hi] closest to `target`: (its word error rate, lo, hi).

    Up to `MAX_LEAD_WORDS` words may precede it; any number may follow it. Ties go to the earliest, longest
    stretch: "on March 2" heard for "on November 21" is three wrong words, not three missing ones.
    """
    from voiceclone.quality.evaluation import word_error_rate

    reference = " ".join(target)
    best = (float("inf"), 0, len(heard))
    for lo in range(min(MAX_LEAD_WORDS, len(heard) - 1) + 1):
        for hi in range(len(heard), lo, -1):
            wer = word_error_rate([reference], [" ".join(heard[lo:hi])])
            if wer < best[0] - 1e-9:
                best = (wer, lo, hi)
    return best


def _name_similarity(name: str, target: list[str], heard: list[str]) -> float:
    """How well `name` was heard: the best phoneme match between it and one to (its words + 1) heard words.

    Only the heard words that the word alignment puts where the name is in `target` (give or take one word) are
    tried, so that a short name cannot match some other word of the sentence.

    Args:
        name: the name that must be heard.
        target: the normalised words of the expected sentence.
        heard: the normalised words of the matched stretch of the transcript.

    Returns:
        1 - (phoneme edit distance / the longer length), in [0, 1]; 1 when the name's words are all there.
    """
    import jiwer

    name_words = words(name)
    if not name_words:
        return 1.0
    region = heard
    start = next((i for i in range(len(target)) if target[i : i + len(name_words)] == name_words), None)
    if start is not None and heard:
        end = start + len(name_words)
        hyp: list[int] = []
        for chunk in jiwer.process_words(" ".join(target), " ".join(heard)).alignments[0]:
            touches = chunk.ref_start_idx < end and chunk.ref_end_idx > start
            if chunk.type == "insert":
                touches = start <= chunk.ref_start_idx <= end
            if touches and chunk.type != "delete":
                hyp += range(chunk.hyp_start_idx, chunk.hyp_end_idx)
        if not hyp:
            return 0.0  # nothing was heard where the name should be
        region = heard[max(0, min(hyp) - 1) : max(hyp) + 2]
    if any(region[i : i + len(name_words)] == name_words for i in range(len(region))):
        return 1.0
    want = _sounds(" ".join(name_words))
    best = 0.0
    for size in range(1, len(name_words) + 2):
        for i in range(max(1, len(region) - size + 1)):
            best = max(best, _similarity(want, _sounds(" ".join(region[i : i + size]))))
    return best


def _sounds(text: str) -> str:
    """`text` as espeak-ng phonemes without stress, length marks and spaces; the letters if no phonemizer."""
    global _phonemizer
    try:
        with _phonemizer_lock:  # espeak-ng keeps global state: one call at a time
            if _phonemizer is None:
                from piper.phonemize_espeak import EspeakPhonemizer

                _phonemizer = EspeakPhonemizer()
            phonemes = _phonemizer.phonemize("en-us", text)
    except Exception:  # piper-tts missing or its espeak-ng data damaged: compare spellings instead
        return re.sub(r"[^a-z0-9]", "", text.lower())
    return "".join(p for sentence in phonemes for p in sentence if p not in "ˈˌː \u0329")


def _similarity(a: str, b: str) -> float:
    """1 - Levenshtein distance / the longer length, in [0, 1]."""
    if not a and not b:
        return 1.0
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return 1.0 - previous[-1] / max(len(a), len(b))


def speaker_from_voice_name(voice_name: str) -> str:
    """A person's name to put in the sentence when none is given: "alice-studio" -> "Alice"."""
    first = re.split(r"[-_.\s]+", voice_name.strip())[0]
    return first[:1].upper() + first[1:] if first else voice_name


def enrollment_consent(
    policy: ConsentPolicy,
    speaker: str,
    recording: Path | None,
    consent_audio: Path | None = None,
    text: str | None = None,
    on: date | None = None,
) -> dict | None:
    """The consent record `enroll` stores, checked against the policy.

    Spoken consent is verified at the start of `recording` (`--consent-phrase`) or in `consent_audio`
    (`--consent-audio FILE`); text consent (`--consent TEXT`) is kept as unverified text.

    Args:
        policy: The config's `consent:` (required, recorded, off).
        speaker: The person's name the sentence must say.
        recording: The recording to clone, when the sentence opens it; None otherwise.
        consent_audio: A separate recording of the sentence, or None.
        text: Consent given as text, or None.
        on: The date the sentence names (default: today).

    Returns:
        The record to store (None under `off`, or when nothing was given).

    Raises:
        ConsentError: the sentence was not heard, or the policy refuses what was given (one line each).
    """
    expected = consent_sentence(speaker, on or date.today())
    record: dict | None = None
    if consent_audio is not None:
        record = verify_consent_file(consent_audio, expected, at_start=False, name=speaker, source="separate file")
        record = record.to_dict()
    elif recording is not None:
        record = verify_consent_file(recording, expected, at_start=True, name=speaker, source="recording start")
        record = record.to_dict()
    elif text:
        record = text_consent(text)
    check_policy(policy, record, f"the voice of {speaker}")
    return stored_consent(policy, record)
