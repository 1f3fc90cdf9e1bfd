"""How good is a clone? Speaker similarity and intelligibility of voices speaking held-out sentences.

Each voice to compare (the base voice, a clone with one converter or another) speaks `EVAL_SENTENCES`; every
utterance is measured twice:

- **similarity**: cosine similarity between the speaker embedding of the utterance and that of the voice's
  enrollment speech, from resemblyzer's speaker encoder (its weights ship in its wheel). Embeddings are
  non-negative and L2-normed, so values lie in [0, 1]. In our checks the bundled Piper voice scores 0.94 against
  other speech of its own, and espeak-ng or Piper raised 25-50% in pitch and formants score 0.44-0.57 against it.
  Each utterance is embedded on its own and the per-sentence values are averaged (rather than one embedding of
  all utterances joined) because: a listener hears sentences one at a time; a sentence (3-4 s) is about as long
  as each half of the enrollment speech used for the ceiling, so the two are comparable; and the per-sentence
  values give the spread that decides whether a difference between two voices is more than noise (see verdict).
- **word error rate** (WER): the utterance transcribed by the local Whisper tiny.en model, against the sentence,
  both lower-cased with punctuation stripped (jiwer). A voice's WER is over all its words (errors / words in the
  sentences), so long sentences weigh more; it is 0 when every word is heard and can exceed 1 (insertions).
  Whisper tiny makes a few errors on clean speech too (3-5% on the base voice), so compare WERs side by side,
  not with 0.

The **ceiling** is the similarity of the enrollment speech to itself: its first half against its second half.
It is what the same person scores against themselves. Each half is shorter than the whole enrollment speech that
utterances are compared with (a noisier embedding), so it errs low: a very good clone can exceed it. It is None
when the enrollment speech holds less than `measures.MIN_HALF_SECONDS` of speech per half, and marked rough below
`measures.ROUGH_HALF_SECONDS` per half.

Measuring never feeds back into conversion: the quality package imports nothing of the conversion path, and nothing
there imports it.

`Report.to_dict()` fields (stable, for `voiceclone eval --json`):

- `sentences`: list of str, the texts spoken, in order.
- `enrollment_seconds`: float, seconds of enrollment speech the encoder used (after its own silence trimming).
- `ceiling`: float in [0, 1] or null: split-half similarity of the enrollment speech.
- `ceiling_note`: str or null: why the ceiling is missing or rough.
- `baseline`: str or null: the label the others are compared with ("base" when present, else the first).
- `verdict`: str, the one-line verdict.
- `speakers`: list, one object per voice, in the order given:
  - `label`: str, e.g. "base", "clone (matcher)".
  - `similarity`: float in [0, 1], mean similarity over the sentences.
  - `similarity_per_sentence`: list of float in [0, 1], one per sentence (0 when an utterance held no speech).
  - `wer`: float >= 0, word error rate over all sentences (0.05 is 5%).
  - `wer_per_sentence`: list of float >= 0, one per sentence.
  - `transcripts`: list of str, what Whisper heard, one per sentence.
  - `seconds`: float, seconds of audio the voice produced for all sentences.
  - `speak_seconds`: float, wall-clock seconds spent making that audio (so speed can be compared too).
  - `nearest`: list of {`voice`: str, `similarity`: float in [0, 1]}, the voices this one sounds most like, closest
    first: the enrolled voice and the other voices given to compare with (the library's), each scored like
    `similarity` (per sentence against that voice's enrollment speech, averaged). Empty when no others were given.

**Which voice does it sound like?** Similarity to the enrolled voice alone does not say whether a clone could be
taken for someone else. With other voices to compare with (`others`), every utterance is also scored against each
of them, and `nearest` ranks them: a clone that works sounds most like its own voice (closed-set identification).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from voiceclone.quality.measures import (
    ENCODER_RATE,
    MIN_SPEECH_SECONDS,
    EvaluationError,
    cosine,
    embed,
    encoder_input,
    load_models,
    split_half_ceiling,
    word_error_rate,
)
from voiceclone.quality.transcribe import transcribe

EVAL_SENTENCES: tuple[str, ...] = (
    # Held out: none is in the base voice's calibration text. Everyday words that Whisper tiny spells one way,
    # no digits, abbreviations, hyphens or homophones (WER must measure hearing, not spelling), and between them
    # most English consonants (ch, j, sh, zh, th, ng, v, z, r, l) and vowels.
    "A gentle breeze carried the smell of pine across the quiet valley.",
    "She measured the sugar carefully before pouring it into the yellow bowl.",
    "The children watched the fishing boats return through the thick morning fog.",
    "The judge asked each witness to speak slowly and clearly.",
    "My neighbor fixed the squeaky gate with a hammer and some oil.",
    "Thunder rolled over the hills while the village slept beneath heavy clouds.",
    "He wrote a short letter to his uncle about the long journey north.",
    "Bright orange leaves drifted slowly down the shallow stream behind the school.",
)

# Verdict thresholds (similarity in cosine units, WER as a fraction). On this encoder, one voice against another
# differs by 0.3-0.5 (the bundled Piper voice against espeak-ng or a pitch-shifted copy of itself), and the
# per-sentence values of one voice spread by about 0.01-0.04. A gain counts only when it exceeds both
# SIMILARITY_MIN_GAIN and twice the standard error of the per-sentence differences (the two voices speak the same
# sentences, so the differences are paired); it is "much" closer from SIMILARITY_MUCH_GAIN, about a third of the
# distance between two different speakers.
SIMILARITY_MIN_GAIN = 0.02
SIMILARITY_MUCH_GAIN = 0.10
# With the default sentences (~95 words) one word is ~1%; Whisper tiny itself moves by a few words between two
# clear voices. Up to WER_SAME worse is "as intelligible"; beyond WER_MUCH_WORSE is "much less intelligible".
WER_SAME = 0.05
WER_MUCH_WORSE = 0.15

Speak = Callable[[str], tuple[np.ndarray, int]]
Progress = Callable[[str, int, int], None]
KeepAudio = Callable[[str, int, np.ndarray, int], None]


@dataclass(frozen=True)
class SpeakerResult:
    """The measurements of one voice over all sentences; see the module docstring for units and ranges."""

    label: str
    similarity: float
    similarity_per_sentence: tuple[float, ...]
    wer: float
    wer_per_sentence: tuple[float, ...]
    transcripts: tuple[str, ...]
    seconds: float
    speak_seconds: float
    nearest: tuple[tuple[str, float], ...] = ()  # (voice name, mean similarity), closest first; () = not compared

    def likeness(self, shown: int = 3) -> str | None:
        """In words, the voices this one sounds most like: "sounds most like alice (0.78), then bob (0.61)"."""
        if len(self.nearest) < 2:
            return None
        named = [f"{name} ({score:.2f})" for name, score in self.nearest[:shown]]
        return f"sounds most like {named[0]}, then " + ", then ".join(named[1:])

    def to_dict(self) -> dict:
        """JSON-ready fields, rounded to what is meaningful."""
        return {
            "label": self.label,
            "similarity": round(self.similarity, 4),
            "similarity_per_sentence": [round(s, 4) for s in self.similarity_per_sentence],
            "wer": round(self.wer, 4),
            "wer_per_sentence": [round(w, 4) for w in self.wer_per_sentence],
            "transcripts": list(self.transcripts),
            "seconds": round(self.seconds, 3),
            "speak_seconds": round(self.speak_seconds, 3),
            "nearest": [{"voice": name, "similarity": round(score, 4)} for name, score in self.nearest],
        }


@dataclass(frozen=True)
class Report:
    """Everything `evaluate` measured: one row per voice, the ceiling, and how to read them."""

    rows: list[SpeakerResult]
    ceiling: float | None
    ceiling_note: str | None
    sentences: tuple[str, ...]
    enrollment_seconds: float

    @property
    def baseline(self) -> SpeakerResult | None:
        """The row the others are compared with: the one labelled "base", else the first; None without rows."""
        for row in self.rows:
            if row.label == "base":
                return row
        return self.rows[0] if self.rows else None

    def verdict(self) -> str:
        """One line: each voice against the baseline, in similarity and intelligibility, with the numbers.

        Returns:
            e.g. "clone (matcher) is much closer to the speaker than the base voice (0.81 vs 0.62, ceiling 0.90)
            and as intelligible (WER 4% vs 3%)"; several clones are joined with "; ".
        """
        base = self.baseline
        others = [row for row in self.rows if row is not base]
        if base is None:
            return "nothing was measured"
        if not others:
            return _summary(base, self.ceiling)
        return "; ".join(_comparison(row, base, self.ceiling) for row in others)

    def to_dict(self) -> dict:
        """The stable JSON form documented in the module docstring."""
        base = self.baseline
        return {
            "sentences": list(self.sentences),
            "enrollment_seconds": round(self.enrollment_seconds, 3),
            "ceiling": None if self.ceiling is None else round(self.ceiling, 4),
            "ceiling_note": self.ceiling_note,
            "baseline": base.label if base else None,
            "verdict": self.verdict(),
            "speakers": [row.to_dict() for row in self.rows],
        }


def evaluate(
    enrollment_speech: np.ndarray,
    enrollment_rate: int,
    speakers: dict[str, Speak],
    sentences: Sequence[str] = EVAL_SENTENCES,
    on_progress: Progress | None = None,
    keep_audio: KeepAudio | None = None,
    others: Mapping[str, tuple[np.ndarray, int]] | None = None,
    voice_name: str = "the person",
) -> Report:
    """Let each voice speak every sentence, and measure it against the enrollment speech.

    Args:
        enrollment_speech: the enrolled person's speech (the voice's kept speech), mono float in [-1, 1].
        enrollment_rate: its sample rate in Hz.
        speakers: label -> speak(sentence) returning (mono float32 audio in [-1, 1], its rate in Hz); in the
            order the rows should appear. "base" is the label the others are compared with.
        sentences: the texts to speak (default `EVAL_SENTENCES`); at least one.
        on_progress: called as (label, done, total) after each sentence of each voice, done = 1..total.
        keep_audio: called as (label, sentence index from 0, audio, rate) with each utterance as spoken,
            before it is measured (e.g. to write files).
        others: other voices to compare with, name -> (enrollment speech, rate); each row's `nearest` then ranks
            them and the enrolled voice. Voices with too little speech to embed are left out.
        voice_name: the enrolled voice's name in `nearest`.

    Returns:
        A `Report`.

    Raises:
        EvaluationError: the enrollment speech holds too little speech to embed.
        EvaluationUnavailable / TranscriberMissing: the eval extra is not installed.
        ValueError: no sentences, or audio that is not mono.
    """
    sentences = tuple(sentences)
    if not sentences:
        raise ValueError("evaluate needs at least one sentence")
    load_models()  # a missing package fails here, before anything is spoken
    enrollment = encoder_input(enrollment_speech, enrollment_rate)
    if len(enrollment) < MIN_SPEECH_SECONDS * ENCODER_RATE:
        raise EvaluationError(
            "the voice's enrollment speech has too little speech for the speaker encoder; enroll it again "
            "with a longer recording"
        )
    target = embed(enrollment)
    voices = {voice_name: target, **_embeddings(others or {}, exclude=voice_name)}
    ceiling, note = split_half_ceiling(enrollment)
    rows = [
        _measure_speaker(label, speak, sentences, voices, on_progress, keep_audio) for label, speak in speakers.items()
    ]
    return Report(rows, ceiling, note, sentences, len(enrollment) / ENCODER_RATE)


def _embeddings(voices: Mapping[str, tuple[np.ndarray, int]], exclude: str) -> dict[str, np.ndarray]:
    """Speaker embeddings of other voices' enrollment speech, by name; those without enough speech left out."""
    out = {}
    for name, (speech, rate) in voices.items():
        samples = encoder_input(speech, rate)
        if name != exclude and len(samples) >= MIN_SPEECH_SECONDS * ENCODER_RATE:
            out[name] = embed(samples)
    return out


def _measure_speaker(
    label: str,
    speak: Speak,
    sentences: tuple[str, ...],
    voices: dict[str, np.ndarray],
    on_progress: Progress | None,
    keep_audio: KeepAudio | None,
) -> SpeakerResult:
    """One voice over all sentences; `voices` holds the enrolled voice's embedding first, then the others."""
    similarities, transcripts, seconds, speaking = [], [], 0.0, 0.0
    to_each = np.zeros(len(voices))
    for index, sentence in enumerate(sentences):
        start = time.perf_counter()
        audio, rate = speak(sentence)
        speaking += time.perf_counter() - start
        audio = np.asarray(audio, dtype=np.float32)
        if keep_audio:
            keep_audio(label, index, audio, rate)
        seconds += len(audio) / rate
        scores = _similarities(audio, rate, voices)
        to_each += scores / len(sentences)
        similarities.append(float(scores[0]))
        transcripts.append(transcribe(audio, rate))
        if on_progress:
            on_progress(label, index + 1, len(sentences))
    return SpeakerResult(
        label=label,
        similarity=float(np.mean(similarities)),
        similarity_per_sentence=tuple(similarities),
        wer=word_error_rate(sentences, transcripts),
        wer_per_sentence=tuple(word_error_rate([s], [t]) for s, t in zip(sentences, transcripts, strict=True)),
        transcripts=tuple(transcripts),
        seconds=seconds,
        speak_seconds=speaking,
        nearest=_ranked(voices, to_each) if len(voices) > 1 else (),
    )


def _similarities(audio: np.ndarray, rate: int, voices: dict[str, np.ndarray]) -> np.ndarray:
    """One utterance's similarity to each voice (as `measures.utterance_similarity`: 0 when it holds no speech)."""
    speech = encoder_input(audio, rate)
    if len(speech) < MIN_SPEECH_SECONDS * ENCODER_RATE:
        return np.zeros(len(voices))
    utterance = embed(speech)
    return np.array([cosine(utterance, voice) for voice in voices.values()])


def _ranked(voices: dict[str, np.ndarray], scores: np.ndarray) -> tuple[tuple[str, float], ...]:
    """(name, score) pairs, highest score first (ties in the order given)."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    names = list(voices)
    return tuple((names[i], float(scores[i])) for i in order)


def _summary(row: SpeakerResult, ceiling: float | None) -> str:
    """One voice on its own: its numbers."""
    limit = f" (ceiling {ceiling:.2f})" if ceiling is not None else ""
    return f"{row.label}: similarity {row.similarity:.2f}{limit}, WER {row.wer:.0%}"


def _comparison(row: SpeakerResult, base: SpeakerResult, ceiling: float | None) -> str:
    """One voice against the baseline, in words and numbers."""
    limit = f", ceiling {ceiling:.2f}" if ceiling is not None else ""
    other = "the base voice" if base.label == "base" else base.label
    return (
        f"{row.label} is {_closeness(row, base)} {other} ({row.similarity:.2f} vs {base.similarity:.2f}{limit}) "
        f"and {_intelligibility(row, base)} (WER {row.wer:.0%} vs {base.wer:.0%})"
    )


def _closeness(row: SpeakerResult, base: SpeakerResult) -> str:
    """How much closer to the speaker `row` is than `base`, judged against the noise of paired sentences."""
    gain = row.similarity - base.similarity
    if abs(gain) <= max(SIMILARITY_MIN_GAIN, 2 * _paired_standard_error(row, base)):
        return "no closer to the speaker than"
    if gain >= SIMILARITY_MUCH_GAIN:
        return "much closer to the speaker than"
    if gain > 0:
        return "closer to the speaker than"
    if gain <= -SIMILARITY_MUCH_GAIN:
        return "much further from the speaker than"
    return "further from the speaker than"


def _paired_standard_error(row: SpeakerResult, base: SpeakerResult) -> float:
    """Standard error of the mean per-sentence similarity difference; 0 when it cannot be estimated."""
    if len(row.similarity_per_sentence) != len(base.similarity_per_sentence):
        return 0.0  # not the same sentences: no pairs
    diffs = np.subtract(row.similarity_per_sentence, base.similarity_per_sentence)
    if diffs.size < 2:
        return 0.0
    return float(np.std(diffs, ddof=1) / math.sqrt(diffs.size))


def _intelligibility(row: SpeakerResult, base: SpeakerResult) -> str:
    """`row`'s word error rate against `base`'s, in words."""
    worse = row.wer - base.wer
    if worse > WER_MUCH_WORSE:
        return "much less intelligible"
    if worse > WER_SAME:
        return "less intelligible"
    if worse < -WER_SAME:
        return "more intelligible"
    return "as intelligible"
