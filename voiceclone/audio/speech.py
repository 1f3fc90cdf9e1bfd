"""Finding speech in a recording with the Silero VAD model that ships inside Pipecat's wheel (no download).

A long recording is masked in pieces (`masked_blocks`), so that memory stays bounded whatever its length.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from functools import lru_cache
from importlib import resources

import numpy as np
from pipecat.audio.vad.silero import SileroOnnxModel

from voiceclone.audio.resample import resample

VAD_RATE = 16000
WINDOW = 512  # samples at 16 kHz: the model's fixed window (32 ms)
_MODEL_LOCK = threading.Lock()  # the model carries state from window to window: one recording at a time


@lru_cache(maxsize=1)
def _model():
    """Pipecat's Silero model wrapper on the model file in its package data (CPU, one thread)."""
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


def masked_blocks(
    blocks: Iterator[np.ndarray],
    sr: int,
    mask_fn: Callable[[np.ndarray, int], np.ndarray],
    core_s: float = 60.0,
    context_s: float = 2.0,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Apply a per-sample mask function (a VAD) to a long stream in pieces: (audio, mask) pairs in order.

    Each piece of `core_s` is masked together with `context_s` of audio on either side, and only the core's
    mask is kept, so that decisions near a piece's edges see the same surroundings as in one whole pass (a VAD
    needs a little audio to settle, and bridges short gaps). A stream shorter than one piece is masked whole.
    """
    core, context = int(core_s * sr), int(context_s * sr)
    buffer = np.zeros(0, dtype=np.float32)
    start = 0  # first sample of `buffer` not yet handed out; what comes before it is left context
    for block in blocks:
        buffer = np.concatenate([buffer, block])
        while len(buffer) - start >= core + context:
            lo = max(0, start - context)
            mask = mask_fn(buffer[lo : start + core + context], sr)
            yield buffer[start : start + core], mask[start - lo : start - lo + core]
            buffer, start = buffer[start + core - context :], context
    if len(buffer) > start:
        lo = max(0, start - context)
        yield buffer[start:], mask_fn(buffer[lo:], sr)[start - lo :]
