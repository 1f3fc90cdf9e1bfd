"""Cutting the silence a base voice puts around what it says, where a pause would only be a wait.

Piper starts every synthesis with about 50 ms of silence and ends it with 170-270 ms. Before an answer's first
words that is latency the caller hears; after words cut from the middle of a sentence (to start speaking early)
it is a pause where none belongs.
"""

from __future__ import annotations

import numpy as np

THRESHOLD = 0.01  # |sample| below this (-40 dBFS) is silence
MARGIN_S = 0.01  # kept before the first sound / after the last: onsets and decays are not clipped


def trim_silence(
    audio: np.ndarray,
    rate: int,
    start: bool = True,
    end: bool = False,
    end_keep_s: float = MARGIN_S,
    start_keep_s: float = MARGIN_S,
) -> np.ndarray:
    """`audio` without its leading (`start`) and/or trailing (`end`) silence, less a small margin.

    Args:
        audio: Float32 mono samples in [-1, 1].
        rate: Their sample rate in Hz.
        start: Cut the silence before the first sound (keeping `start_keep_s`).
        end: Cut the silence after the last sound (keeping `end_keep_s`).
        end_keep_s: How much of the trailing silence to keep (a clause's short pause, say).
        start_keep_s: How much of the leading silence to keep.

    Returns:
        A view of `audio`; all of it when it holds no sound at all.
    """
    loud = np.flatnonzero(np.abs(audio) >= THRESHOLD)
    if len(loud) == 0:
        return audio
    first = max(0, int(loud[0]) - int(start_keep_s * rate)) if start else 0
    last = min(len(audio), int(loud[-1]) + 1 + int(end_keep_s * rate)) if end else len(audio)
    return audio[first:last]
