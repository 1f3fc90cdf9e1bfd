"""Checking spoken consent: is the sentence in the audio, with the speaker's name (the local Whisper model), and
is the voice that read it the voice to be cloned (`consent.speaker`)?

**Acceptance**: the word error rate between the sentence and the best-matching stretch of what was heard (up to
`MAX_LEAD_WORDS` words may come before it, anything after it: a recording goes on with other speech) must be at
most `MAX_WER` (25%: tiny.en mishears up to three of the ~20 words of a clearly read sentence: 0-14% for Piper,
up to 19% for espeak-ng's default voice and 29% for its female voice at 150 words a minute; a different sentence
scores near 100%, 95% in our test), and the speaker's name must be heard **exactly**: the words heard where the
name belongs must be the name, or sound the same, vowels aside (espeak-ng phonemes, through the phonemizer inside
piper-tts: "Jon" for "John", "Jean-Luc" for "Gene Luke", "Aaron" for "Erin"). A near miss is not a pass ("Gane Lee"
for "Dana Lee" has 71% of the sounds right): the message says what was heard and asks for the sentence again (a
different name is one word: its word error rate alone, 5%, would pass). The date counts only through the word
error rate: the sentence read with another date (three words, 15%) passes, and the record keeps what was heard.

**Who said it**: `enrollment_consent` and `consent_with_speaker` compare the voice that read the sentence with
the voice of the recordings to clone (`consent.speaker.check_speaker`): the rest of the recording after the
sentence (found by `locate_consent_end`) and any other recordings, or, for a separate consent file, all of them.
Another voice is refused in one line, and the record keeps the check (`speaker_check`).

**Where the sentence is**: at the start of a recording (the first `consent_window_seconds` of it are
transcribed: the words at `READING_WPS` plus `LEAD_SECONDS`), or a separate file (its first `MAX_FILE_SECONDS`).
Enrollment uses the **whole recording, consent sentence included**, as the cloning sample (as Hugging Face's voice
consent gate does): it is the speaker's own voice, and it ties the consent to the very audio that is cloned. A
caller that wants the rest only can ask `locate_consent_end` where the sentence ends (a second, slower Whisper pass
with word timestamps: checking itself decodes without timestamps, which hears dates better: with them tiny.en
dropped the year of an espeak-ng reading and heard "21, in 2026" in a Piper one).
"""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import numpy as np

from voiceclone.audio.reader import load_audio
from voiceclone.audio.resample import resample
from voiceclone.quality.transcribe import WHISPER_RATE, load_model
from voiceclone.responsible.consent.matching import best_span, heard_name, name_similarity
from voiceclone.responsible.consent.policy import (
    MAX_WER,
    ConsentError,
    ConsentPolicy,
    ConsentRecord,
    check_policy,
    stored_consent,
    text_consent,
    utc_now,
)
from voiceclone.responsible.consent.sentence import NAME_IN_TEMPLATE, consent_sentence, consent_window_seconds, words
from voiceclone.responsible.consent.speaker import check_speaker

NAME_MIN_SIMILARITY = 1.0  # share of the name's phonemes that must match: all (see the module docstring)
MAX_FILE_SECONDS = 60.0  # a separate consent file is transcribed up to here, seconds
RECOGNISER = "whisper tiny.en (faster-whisper, int8, CPU)"


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
        found = NAME_IN_TEMPLATE.match(expected)
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

    wer, lo, hi = best_span(target, [w for w, _ in heard_words])
    first_token, last_token = heard_words[lo][1], heard_words[hi - 1][1]
    heard = "".join(token for token, _, _ in tokens[first_token : last_token + 1]).strip()
    similarity = name_similarity(name, target, [w for w, _ in heard_words[lo:hi]]) if name else None
    if wer > MAX_WER:
        raise ConsentError(
            f'consent not recognised: expected "{expected}" but heard "{transcript}" '
            f"(word error rate {wer:.0%}, at most {MAX_WER:.0%} allowed); record the sentence again, read clearly"
            + (" at the very start" if at_start else "")
        )
    if similarity is not None and similarity < NAME_MIN_SIMILARITY:
        said = heard_name(name, target, [w for w, _ in heard_words[lo:hi]])
        raise ConsentError(
            f'consent not recognised: the name "{name}" was not heard'
            + (f' (heard "{said}")' if said else "")
            + f' in "{heard}"; a name must be heard exactly: read the sentence again, saying "{name}" clearly'
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
        time=utc_now(),
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
    audio, rate, digest = _read_with_digest(Path(path))
    return verify_spoken_consent(audio, rate, expected, at_start, name=name, source=source, file_sha256=digest)


def _read_with_digest(path: Path) -> tuple[np.ndarray, int, str]:
    """A consent file's audio, its rate, and the hex SHA-256 of its exact bytes."""
    audio, rate = load_audio(path)  # checks the file first (missing, empty, a folder, damaged)
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return audio, rate, digest.hexdigest()


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
    _, _, hi = best_span(words(expected), [w for w, _ in heard_words])
    return round(float(tokens[heard_words[hi - 1][1]][2]), 3)


def enrollment_consent(
    policy: ConsentPolicy,
    speaker: str,
    recording: Path | None,
    consent_audio: Path | None = None,
    text: str | None = None,
    on: date | None = None,
    samples: list[Path] | None = None,
) -> dict | None:
    """The consent record `enroll` stores, checked against the policy.

    Spoken consent is verified at the start of `recording` (`--consent-phrase`) or in `consent_audio`
    (`--consent-audio FILE`), and its speaker is compared with the voice in `samples`; text consent
    (`--consent TEXT`) is kept as unverified text.

    Args:
        policy: The config's `consent:` (required, recorded, off).
        speaker: The person's name the sentence must say.
        recording: The recording to clone, when the sentence opens it; None otherwise.
        consent_audio: A separate recording of the sentence, or None.
        text: Consent given as text, or None.
        on: The date the sentence names (default: today).
        samples: All the recordings to clone (`recording` among them when given); None: `recording` alone.

    Returns:
        The record to store (None under `off`, or when nothing was given).

    Raises:
        ConsentError: the sentence was not heard, another voice read it, or the policy refuses (one line each).
    """
    expected = consent_sentence(speaker, on or date.today())
    samples = list(samples if samples is not None else ([recording] if recording is not None else []))
    record: dict | None = None
    if consent_audio is not None:
        audio, rate, digest = _read_with_digest(Path(consent_audio))
        verified = verify_spoken_consent(
            audio, rate, expected, False, name=speaker, source="separate file", file_sha256=digest
        )
        record = consent_with_speaker(verified, (audio[: int(MAX_FILE_SECONDS * rate)], rate), samples)
    elif recording is not None:
        audio, rate, digest = _read_with_digest(Path(recording))
        others = [s for s in samples if Path(s) != Path(recording)]
        record = consent_opening(
            audio, rate, expected, name=speaker, source="recording start", file_sha256=digest, others=others
        )
    elif text is not None:  # "" too: an empty $CONSENT in a script must not pass as no consent at all
        record = text_consent(text)
    check_policy(policy, record, f"the voice of {speaker}")
    return stored_consent(policy, record)


def consent_opening(
    audio: np.ndarray,
    rate: int,
    expected: str,
    *,
    name: str | None = None,
    source: str | None = None,
    file_sha256: str | None = None,
    others: list = (),
) -> dict:
    """Consent at the start of a recording (`--consent-phrase`, the page): the sentence heard, then its reader
    compared with the rest of the recording and with `others` (paths or (audio, rate)). The record as a dict.

    Raises:
        ConsentError: as for `verify_spoken_consent` and `consent_with_speaker`.
    """
    verified = verify_spoken_consent(audio, rate, expected, True, name=name, source=source, file_sha256=file_sha256)
    sentence, rest = split_at_sentence(audio, rate, expected)
    return consent_with_speaker(verified, sentence, list(others), first=rest)


def split_at_sentence(audio: np.ndarray, rate: int, expected: str) -> tuple[tuple, tuple]:
    """A recording that opens with the consent sentence as ((the sentence, rate), (the rest, rate))."""
    end = locate_consent_end(audio, rate, expected)
    if end is None:  # heard once, not on the second pass: take the stretch the check listened to
        end = consent_window_seconds(expected)
    cut = min(len(audio), int(round(end * rate)))
    return (audio[:cut], rate), (audio[cut:], rate)


def consent_with_speaker(
    record: ConsentRecord | dict,
    consent: tuple[np.ndarray, int],
    samples: list[Path] | list[tuple[np.ndarray, int]],
    first: tuple[np.ndarray, int] | None = None,
) -> dict:
    """The record with its speaker check: is the voice that read the sentence the voice of the samples?

    Args:
        record: the verified consent (`verify_spoken_consent`'s record or its dict).
        consent: (audio, rate) of the sentence alone.
        samples: the recordings to clone, as paths or (audio, rate), without the sentence.
        first: (audio, rate) of the rest of the recording the sentence opened, compared first.

    Returns:
        The record as a dict, with "speaker_check".

    Raises:
        ConsentError: another voice read the sentence, or the sentence holds too little speech to tell.
    """
    loaded = [load_audio(s) if isinstance(s, (str, Path)) else s for s in samples]
    check = check_speaker(consent, ([first] if first is not None else []) + loaded)
    out = dict(record.to_dict() if isinstance(record, ConsentRecord) else record)
    out["speaker_check"] = check.to_dict()
    if check.method == "too little consent speech":
        raise ConsentError(
            f"consent not accepted: the consent sentence holds {check.consent_seconds:.1f} s of speech, too little "
            "to tell whose voice it is; read the whole sentence"
        )
    if not check.passed:
        raise ConsentError(
            f"consent not accepted: the voice that read the consent sentence is not the voice to be cloned (speaker "
            f"similarity {check.score:.2f}, at least {check.threshold:.2f} for the same person); the person whose "
            "voice it is must read the sentence themselves"
        )
    return out


def _transcribe(audio: np.ndarray, sample_rate: int, word_times: bool = False) -> tuple[str, list[tuple], float]:
    """Whisper on `audio`: (transcript, [(word token, start s, end s)], seconds of speech its VAD found).

    Without `word_times` the tokens are the transcript's words and their times None.
    """
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
