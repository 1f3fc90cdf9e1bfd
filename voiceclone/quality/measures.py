"""The measures a clone is judged by: speaker similarity (resemblyzer's encoder) and word error rate (jiwer).

`encoder_input` and `embed` turn audio into a speaker embedding, `cosine` compares two, `utterance_similarity` scores
one utterance against a voice and `split_half_ceiling` the enrollment speech against itself; `word_error_rate`
scores what was heard against what was meant, and `word_alignment` says which words went where. resemblyzer and
jiwer (the eval extra) are imported on first use, each in one place with the install hint. What the numbers mean
and how they were checked: see `quality.evaluation`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np

from voiceclone.audio.resample import resample
from voiceclone.errors import UserError
from voiceclone.once import once
from voiceclone.quality.transcribe import load_model

ENCODER_RATE = 16000  # Hz: resemblyzer's speaker encoder works at 16 kHz
MIN_SPEECH_SECONDS = 0.5  # less speech than this in an utterance gives no usable embedding: similarity 0
MIN_HALF_SECONDS = 2.0  # per half, for a ceiling at all (the encoder looks at 1.6 s windows)
ROUGH_HALF_SECONDS = 5.0  # per half, below which the ceiling is noticeably low and noisy

INSTALL_HINT = "install the eval extra: pip install -e '.[eval]'"


class EvaluationError(UserError):
    """The evaluation cannot be made from what it was given (e.g. enrollment audio with no speech)."""


class EvaluationUnavailable(EvaluationError):
    """The speaker encoder or word error rate package is not installed."""


def utterance_similarity(audio: np.ndarray, rate: int, target: np.ndarray) -> float:
    """Cosine similarity in [0, 1] of one utterance to a target embedding; 0 when it holds no usable speech.

    Args:
        audio: mono float audio in [-1, 1].
        rate: its sample rate in Hz.
        target: a speaker embedding from `embed`.
    """
    speech = encoder_input(audio, rate)
    if len(speech) < MIN_SPEECH_SECONDS * ENCODER_RATE:
        return 0.0  # silence or a click: nothing of any speaker, the lowest score this encoder gives
    return cosine(embed(speech), target)


def split_half_ceiling(speech: np.ndarray) -> tuple[float | None, str | None]:
    """The similarity of the first half of the enrollment speech to the second half.

    Args:
        speech: encoder input from `encoder_input` (16 kHz, silences trimmed).

    Returns:
        (ceiling in [0, 1] or None, a note saying why it is missing or rough, else None).
    """
    half = len(speech) // 2
    half_seconds = half / ENCODER_RATE
    if half_seconds < MIN_HALF_SECONDS:
        return None, (
            f"no ceiling: the enrollment speech ({2 * half_seconds:.1f} s) is too short to split in two halves "
            f"of {MIN_HALF_SECONDS:.0f} s"
        )
    ceiling = cosine(embed(speech[:half]), embed(speech[half:]))
    if half_seconds < ROUGH_HALF_SECONDS:
        return ceiling, (
            f"rough ceiling: halves of {half_seconds:.1f} s (enroll {2 * ROUGH_HALF_SECONDS:.0f} s or more of "
            "speech for a steadier one); it errs low"
        )
    return ceiling, None


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Word errors (substitutions, deletions, insertions) per reference word, over all pairs together.

    Both sides are lower-cased, hyphens and dashes become spaces, other punctuation is removed.

    Args:
        references: the texts that were meant (each with at least one word).
        hypotheses: what was heard, one per reference ("" allowed).

    Returns:
        The WER, >= 0 (0.05 is 5%); above 1 when more words were inserted than there are.
    """
    jiwer = _jiwer()
    normalise = jiwer.Compose(
        [
            jiwer.ToLowerCase(),
            jiwer.SubstituteRegexes({r"[-\u2010-\u2015]": " "}),  # "well-known" and "well known" are the same words
            jiwer.RemovePunctuation(),
            jiwer.RemoveMultipleSpaces(),
            jiwer.Strip(),
            jiwer.ReduceToListOfListOfWords(),
        ]
    )
    return float(
        jiwer.wer(list(references), list(hypotheses), reference_transform=normalise, hypothesis_transform=normalise)
    )


def word_alignment(reference: str, hypothesis: str) -> list:
    """jiwer's word-by-word alignment of `hypothesis` to `reference`, split into words only: its AlignmentChunks."""
    return _jiwer().process_words(reference, hypothesis).alignments[0]


def encoder_input(audio: np.ndarray, rate: int) -> np.ndarray:
    """Audio as the speaker encoder takes it: 16 kHz, level raised to -30 dBFS, long silences cut (its own VAD).

    Args:
        audio: mono float audio in [-1, 1] (NaN and values beyond are cleaned).
        rate: its sample rate in Hz.

    Returns:
        Float32 samples at 16 kHz; empty when there is no speech.
    """
    samples = np.asarray(audio, dtype=np.float32)
    if samples.ndim != 1:
        raise ValueError(f"expected mono audio (one dimension), got shape {samples.shape}")
    # resemblyzer packs samples into 16-bit PCM for its VAD: out-of-range values would wrap around
    samples = np.clip(np.nan_to_num(samples, nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0)
    if samples.size == 0 or np.max(np.abs(samples)) < 1e-4:
        return np.zeros(0, dtype=np.float32)  # silence: its level normalisation would divide by zero
    samples = resample(samples, int(rate), ENCODER_RATE)
    return _resemblyzer().preprocess_wav(samples).astype(np.float32, copy=False)


def embed(speech: np.ndarray) -> np.ndarray:
    """The speaker embedding of encoder input (from `encoder_input`): 256 non-negative floats, L2 norm 1."""
    return load_encoder().embed_utterance(speech)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two embeddings; in [0, 1] for this encoder's (non-negative) embeddings.

    An all-zero embedding (possible in principle after the encoder's ReLU) has no direction: 0.
    """
    norms = float(np.linalg.norm(a) * np.linalg.norm(b))
    value = float(np.dot(a, b)) / norms if norms > 0 else 0.0
    return value if math.isfinite(value) else 0.0


def load_models() -> None:
    """Load the speaker encoder and the Whisper model now (about 2-3 s the first time in a process, then nothing).

    `evaluate` calls it first; a caller can call it earlier, e.g. under a "loading models" spinner.

    Raises:
        EvaluationUnavailable / TranscriberMissing: the eval extra is not installed.
    """
    load_encoder()
    _jiwer()
    load_model()


@once
def load_encoder():
    """resemblyzer's `VoiceEncoder` on the CPU, loaded once per process from the weights in its wheel."""
    return _resemblyzer().VoiceEncoder(device="cpu", verbose=False)


def _resemblyzer():
    """The resemblyzer package, imported quietly: its dependencies warn about their own deprecated imports."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # scipy.ndimage.morphology
            warnings.simplefilter("ignore", UserWarning)  # webrtcvad: pkg_resources is deprecated
            import resemblyzer
    except ImportError as exc:
        raise EvaluationUnavailable(f"speaker similarity needs resemblyzer ({exc}): {INSTALL_HINT}") from None
    return resemblyzer


def _jiwer():
    try:
        import jiwer
    except ImportError:
        raise EvaluationUnavailable(f"word error rates need jiwer: {INSTALL_HINT}") from None
    return jiwer
