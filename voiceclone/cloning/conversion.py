"""What the rest of the product sees of a converter: the `Conversion` interface, and the rate both work at.

A `Conversion` says what a voice stores for it (an OpenVoice embedding, a matcher profile), how that is made from
speech, what the base voice's own is (made once from the calibration text, cached), and converts base-voice audio
chunk by chunk. `ClonedVoice`, `speak`, `eval` and the bot only see this interface. The two converters are in
`openvoice_conversion.py` and `matcher_conversion.py`; which one a run gets is decided in `choice.py`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from voiceclone.openvoice.sampling import TAU_DEFAULT
from voiceclone.voices.folder import Voice
from voiceclone.voices.record import ConverterEntry
from voiceclone.voices.store import VoiceLibrary

ENGINES = ("auto", "openvoice", "matcher")
# The rate both converters work at and voices keep their speech at (the published OpenVoice converters' rate).
SPEECH_RATE = 22050


@dataclass(frozen=True)
class Sampling:
    """How a stochastic converter draws its noise: temperature `tau` and a generator (None: fresh noise)."""

    tau: float = TAU_DEFAULT
    generator: object | None = None  # a torch.Generator


class Conversion(Protocol):
    """A converter as the rest of the product uses it."""

    engine: str  # "openvoice" or "matcher"
    key: str  # what a voice stores for it: "v2"/"v1" (embedding-KEY.npy) or "m1" (profile-KEY.json)
    sampling_rate: int  # Hz, of the audio in and out
    # True when `stream` draws noise and takes `sampling=Sampling(...)` (OpenVoice); a deterministic converter
    # (the matcher) takes no such argument.
    stochastic: bool

    @property
    def label(self) -> str:
        """For people: "OpenVoice v2", "voice matcher m1"."""
        ...

    def record(self) -> ConverterEntry:
        """What voice.json says of this converter."""
        ...

    def analyse(self, speech: np.ndarray, rate: int) -> object:
        """A voice's data (embedding or profile) from its speech (float32 mono at `rate` Hz)."""
        ...

    def voice_data(self, library: VoiceLibrary, voice: Voice) -> object:
        """The stored data of an enrolled voice; made from its kept speech (and stored) when missing or stale."""
        ...

    def base_data(self, engine) -> object:
        """The base voice's data, made once from the calibration text and cached."""
        ...

    def stream(self, audio: np.ndarray, source: object, target: object, chunk_frames: int | None = None) -> Iterator:
        """Converted chunks of `audio` (at `sampling_rate`); joined, exactly as long as `audio`."""
        ...
