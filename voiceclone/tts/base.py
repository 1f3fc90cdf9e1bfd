"""The interface every base TTS engine offers: text in, mono float32 audio out, sentence by sentence."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from ..errors import UserError


class TTSError(UserError):
    """A base voice that cannot speak: a missing voice file, a rejected key, a server that does not answer."""


@runtime_checkable
class TTSEngine(Protocol):
    """A base voice. Engines are plain Python: blocking calls, usable without Pipecat."""

    sample_rate: int

    @property
    def identity(self) -> str:
        """A string that changes whenever the voice would sound different (keys the source-embedding cache)."""
        ...

    def synthesize(self, sentence: str) -> np.ndarray:
        """One sentence as float32 mono samples in [-1, 1] at `sample_rate`."""
        ...

