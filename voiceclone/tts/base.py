"""The interface every base TTS engine offers: text in, mono float32 audio out, sentence by sentence."""

from __future__ import annotations

from typing import Protocol, Self, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict

from voiceclone.errors import UserError


class TTSError(UserError):
    """A base voice that cannot speak: a missing voice file, a rejected key, a server that does not answer."""


class EngineSettings(BaseModel):
    """An engine's settings: the same type is the stored settings (a config section) and an update to them.

    As with Pipecat's `<Provider>TTSSettings`, an update carries only the fields it sets; `updated` applies it.
    Unknown keys are refused, so a config file's typo is an error that names the key.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    def updated(self, delta: Self | None) -> Self:
        """These settings with every field that `delta` set explicitly taken from `delta`.

        Args:
            delta: An update of the same type (only its explicitly given fields count), or None.

        Returns:
            New settings; `self` is unchanged.
        """
        if delta is None:
            return self
        return self.model_copy(update={name: getattr(delta, name) for name in delta.model_fields_set})


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
