"""Is the person who spoke the consent sentence the person whose voice is being cloned?

The consent sentence's speech and the sample's speech are compared with resemblyzer's speaker encoder (the one
`eval` uses; its model ships in the wheel). The sample is cut into pieces of `PIECE_SECONDS` of speech and each
piece must sound like the consent's speaker (`MIN_SIMILARITY`), so that a recording where A reads the sentence and
B then talks for a minute is refused even though A's voice is in it.

**The threshold** (`MIN_SIMILARITY`, 0.78 for the least similar piece) was chosen from measurements
(benchmarks/consent_speaker.py; figures in the README): the sentence and a 30 s paragraph read by the same
synthetic speaker score 0.82-0.86 at the lowest piece when both go through the same channel, also after MP3 at
32 kbit/s (0 of 32 refused); the sample alone through noise at 20 dB scores 0.71 and up (5 of 22 refused), through
a telephone band or a 0.4 s reverberation 0.52-0.69 (all refused: record the sentence and the sample the same
way). Different speakers: Piper against espeak-ng, or espeak-ng's voices of another sex, score 0.47-0.70 (none
accepted); Piper shifted by 150-600 cents, 2 of 20 accepted; but espeak-ng's variants of one language
(`en-us+m1` against `en-us+m3`) are nearly one voice to this encoder (0.83-0.97): about half are accepted. The
check refuses another person's voice; it cannot tell one formant synthesiser's presets apart.

When the sample holds less than `MIN_SAMPLE_SECONDS` of speech besides the sentence, the sentence is the sample:
the voice to be cloned is the consent speaker's by construction, and the check says so (`method`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from voiceclone.quality.measures import ENCODER_RATE, cosine, embed, encoder_input

MIN_SIMILARITY = 0.78  # cosine of the consent's and each sample piece's embeddings; see the module docstring
PIECE_SECONDS = 3.0  # seconds of speech per sample piece (the encoder looks at 1.6 s windows)
MIN_CONSENT_SECONDS = 1.5  # seconds of speech the consent must hold to be compared at all
MIN_SAMPLE_SECONDS = 1.5  # less speech than this besides the sentence: the sentence is the sample
MAX_PIECES = 40  # at most this many pieces are compared (2 minutes of speech), spread over the sample
ENCODER = "resemblyzer GE2E speaker encoder (CPU)"


@dataclass(frozen=True)
class SpeakerCheck:
    """The outcome of the speaker check, as the consent record stores it (`to_dict`).

    Fields:
        passed: the consent's speaker is the sample's speaker.
        score: the lowest similarity of a sample piece to the consent's speaker, in [0, 1]; None when nothing
            was compared (`method` says why).
        threshold: `MIN_SIMILARITY`.
        method: "compared" (pieces of the sample against the sentence) or "sentence is the sample".
        pieces: how many pieces of the sample were compared.
        consent_seconds, sample_seconds: the speech each side held.
        encoder: the speaker encoder used.
    """

    passed: bool
    score: float | None
    threshold: float
    method: str
    pieces: int
    consent_seconds: float
    sample_seconds: float
    encoder: str = ENCODER

    def to_dict(self) -> dict:
        out = asdict(self)
        if self.score is not None:
            out["score"] = round(self.score, 4)
        return out


def check_speaker(consent: tuple[np.ndarray, int], samples: list[tuple[np.ndarray, int]]) -> SpeakerCheck:
    """Compare the speaker of the consent audio with the speaker of every piece of the samples.

    Args:
        consent: (mono float audio, rate) of the consent sentence alone.
        samples: (mono float audio, rate) of each recording to clone, without the consent sentence.

    Returns:
        The `SpeakerCheck` (passed or not: the caller decides what a failure means).

    Raises:
        EvaluationUnavailable: resemblyzer is not installed.
    """
    consent_speech = encoder_input(*consent)
    sample_speech = [encoder_input(audio, rate) for audio, rate in samples]
    consent_s = len(consent_speech) / ENCODER_RATE
    sample_s = sum(len(s) for s in sample_speech) / ENCODER_RATE
    if sample_s < MIN_SAMPLE_SECONDS:
        return SpeakerCheck(True, None, MIN_SIMILARITY, "sentence is the sample", 0, consent_s, sample_s)
    if consent_s < MIN_CONSENT_SECONDS:
        return SpeakerCheck(False, None, MIN_SIMILARITY, "too little consent speech", 0, consent_s, sample_s)
    reference = embed(consent_speech)
    pieces = _pieces(sample_speech)
    score = min(cosine(reference, embed(piece)) for piece in pieces)
    return SpeakerCheck(score >= MIN_SIMILARITY, score, MIN_SIMILARITY, "compared", len(pieces), consent_s, sample_s)


def _pieces(speech: list[np.ndarray]) -> list[np.ndarray]:
    """Each recording's speech cut into `PIECE_SECONDS` pieces (a short last piece joins the one before it)."""
    size = int(PIECE_SECONDS * ENCODER_RATE)
    pieces: list[np.ndarray] = []
    for part in speech:
        cut = [part[i : i + size] for i in range(0, len(part), size)]
        if len(cut) > 1 and len(cut[-1]) < size // 2:
            cut[-2:] = [np.concatenate(cut[-2:])]
        pieces += [p for p in cut if len(p) >= int(MIN_SAMPLE_SECONDS * ENCODER_RATE) or len(cut) == 1]
    if len(pieces) > MAX_PIECES:  # spread over the whole sample: a second speaker may come at any point
        pieces = [pieces[i] for i in np.linspace(0, len(pieces) - 1, MAX_PIECES).round().astype(int)]
    return [p for p in pieces if len(p)]
