"""Finding speech in a recording with the Silero VAD model that ships inside Pipecat's wheel (no download)."""

from __future__ import annotations

import threading
from functools import lru_cache

import numpy as np

from voiceclone.audio.reader import resample

VAD_RATE = 16000
WINDOW = 512  # samples at 16 kHz: the model's fixed window (32 ms)
_MODEL_LOCK = threading.Lock()  # the model carries state from window to window: one recording at a time


@lru_cache(maxsize=1)
def _model():
    """Pipecat's Silero model wrapper on the model file in its package data (CPU, one thread)."""
    from importlib import resources

    from pipecat.audio.vad.silero import SileroOnnxModel

    path = resources.files("pipecat.audio.vad.data").joinpath("silero_vad.onnx")
    return SileroOnnxModel(str(path), force_onnx_cpu=True)


def speech_probabilities(audio16k: np.ndarray) -> np.ndarray:
    """Silero's speech probability for each 32 ms window of 16 kHz audio (a recording read from its start)."""
    n = len(audio16k) // WINDOW
    windows = audio16k[: n * WINDOW].astype(np.float32).reshape(n, WINDOW)
    probs = np.empty(n, dtype=np.float32)
    with _MODEL_LOCK:
        model = _model()
        model.reset_states()
        for i, window in enumerate(windows):
            probs[i] = model(window[None, :], VAD_RATE)[0, 0]
    return probs


def speech_mask(
    audio: np.ndarray,
    sr: int,
    threshold: float = 0.5,
    min_speech_s: float = 0.25,
    min_silence_s: float = 0.1,
    pad_s: float = 0.03,
) -> np.ndarray:
    """Per-sample mask of speech in `audio`: hysteresis on Silero's probabilities, short gaps bridged."""
    probs = speech_probabilities(resample(audio, sr, VAD_RATE))
    window_s = WINDOW / VAD_RATE
    active = np.zeros(len(probs), dtype=bool)
    speaking = False
    for i, p in enumerate(probs):  # enter above threshold, leave below threshold - 0.15, as Silero advises
        speaking = p >= threshold if not speaking else p >= threshold - 0.15
        active[i] = speaking
    segments = _runs(active)
    merged: list[list[int]] = []
    for start, end in segments:
        if merged and (start - merged[-1][1]) * window_s < min_silence_s:
            merged[-1][1] = end
        else:
            merged.append([start, end])
    mask = np.zeros(len(audio), dtype=bool)
    pad = int(pad_s * sr)
    for start, end in merged:
        if (end - start) * window_s < min_speech_s:
            continue
        a = max(0, int(start * window_s * sr) - pad)
        b = min(len(audio), int(end * window_s * sr) + pad)
        mask[a:b] = True
    return mask


def _runs(active: np.ndarray) -> list[tuple[int, int]]:
    edges = np.diff(np.concatenate([[0], active.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=False))
