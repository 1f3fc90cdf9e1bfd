"""Finding speech in a recording with the Silero VAD model that ships inside Pipecat's wheel (no download)."""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np

from .audio import resample

VAD_RATE = 16000
WINDOW = 512  # samples at 16 kHz: the model's fixed window (32 ms)
CONTEXT = 64  # samples of the previous window the model expects in front of each one


@lru_cache(maxsize=1)
def _session():
    import onnxruntime

    # Located without importing pipecat (whose import logs a banner and costs a second).
    spec = importlib.util.find_spec("pipecat")
    if spec is None or spec.origin is None:
        raise RuntimeError("pipecat-ai is not installed: it carries the Silero VAD model")
    path = Path(spec.origin).parent / "audio" / "vad" / "data" / "silero_vad.onnx"
    opts = onnxruntime.SessionOptions()
    opts.inter_op_num_threads = 1
    opts.intra_op_num_threads = 1
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"], sess_options=opts)


def speech_probabilities(audio16k: np.ndarray) -> np.ndarray:
    """Silero's speech probability for each 32 ms window of 16 kHz audio."""
    session = _session()
    n = len(audio16k) // WINDOW
    state = np.zeros((2, 1, 128), dtype=np.float32)
    context = np.zeros((1, CONTEXT), dtype=np.float32)
    sr = np.array(VAD_RATE, dtype=np.int64)
    probs = np.empty(n, dtype=np.float32)
    for i in range(n):
        chunk = audio16k[i * WINDOW : (i + 1) * WINDOW][None, :].astype(np.float32)
        x = np.concatenate([context, chunk], axis=1)
        out, state = session.run(None, {"input": x, "state": state, "sr": sr})
        probs[i] = out[0, 0]
        context = x[:, -CONTEXT:]
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
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))
