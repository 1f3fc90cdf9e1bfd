"""A cloned voice: a base TTS engine, the converter, the base voice's embedding and the target's.

Text goes in sentence by sentence; converted audio comes out chunk by chunk, the first chunk of a sentence
long before the sentence has been converted. Plain Python: the CLI and the Pipecat service both use it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
import torch

from .audio import resample
from .cache import cache_dir
from .enrollment import embed
from .files import npy_bytes, write_atomic
from .speech import speech_mask
from .tts.base import TTSEngine
from .tts.sentences import split_sentences

log = logging.getLogger(__name__)

# Read by a base voice once, to learn its own tone color: about 25 s of varied English.
CALIBRATION_TEXT = (
    "The rainbow is a division of white light into many beautiful colors. "
    "These take the shape of a long round arch, with its path high above, and its two ends apparently beyond "
    "the horizon. When the sunlight strikes raindrops in the air, they act as a prism and form a rainbow. "
    "Could you bring the blue folder from the kitchen table? I think we left it next to the old radio. "
    "Yes, of course! Seven, eight, nine, ten: the numbers are easy, but the long words take a little practice. "
    "She asked whether the morning train would be quiet, and he laughed, because it never was."
)


def source_embedding(engine: TTSEngine, converter) -> np.ndarray:
    """The base voice's embedding for this converter: made once from the calibration text, then cached."""
    key = f"{engine.identity}-{converter.version}-{converter.checkpoint_sha256[:16]}"
    path = cache_dir() / "source-se" / f"{key}.npy"
    if path.is_file():
        try:
            cached = np.load(path, allow_pickle=False)
            if cached.shape == (1, converter.config.gin_channels, 1) and np.isfinite(cached).all():
                return cached
        except (OSError, ValueError):
            pass
        log.warning("ignoring a damaged cached base-voice embedding: %s", path)
    log.info("learning the base voice's tone color (once; cached in %s)", path.parent)
    audio = np.concatenate([engine.synthesize(s) for s in split_sentences(CALIBRATION_TEXT)])
    audio = resample(audio, engine.sample_rate, converter.sampling_rate)
    mask = speech_mask(audio, converter.sampling_rate)
    embedding = embed(converter, audio[mask] if mask.sum() > converter.sampling_rate else audio)
    try:
        write_atomic(path, npy_bytes(embedding))
    except OSError as exc:
        log.warning("cannot cache the base-voice embedding in %s (%s)", path.parent, exc.strerror)
    return embedding


class ClonedVoice:
    """Speak sentences in the target voice: base synthesis, then streaming tone-color conversion."""

    def __init__(
        self,
        engine: TTSEngine,
        converter,
        target_se: np.ndarray,
        source_se: np.ndarray | None = None,
        tau: float = 0.3,
        seed: int | None = None,
    ):
        self.engine = engine
        self.converter = converter
        self.target_se = target_se
        self.source_se = source_embedding(engine, converter) if source_se is None else source_se
        self.tau = tau
        self.chunk_frames: int | None = None  # the converter's steady chunk size unless set
        self._generator = torch.Generator().manual_seed(seed) if seed is not None else None

    @property
    def sample_rate(self) -> int:
        """The rate of the converted audio (the converter's, 22050 Hz for the published ones)."""
        return self.converter.sampling_rate

    def convert(self, base_audio: np.ndarray, base_rate: int) -> Iterator[np.ndarray]:
        """Converted chunks of one sentence of base-voice audio."""
        conv = self.converter
        audio = resample(base_audio, base_rate, conv.sampling_rate)
        if len(audio) == 0:
            return
        hop = conv.config.samples_per_frame
        remaining = len(audio)
        # Pad to whole frames (at least one FFT's worth) so that no tail sample is dropped, then cut back.
        padded = max(-(-len(audio) // hop) * hop, conv.config.filter_length)
        audio = np.pad(audio, (0, padded - len(audio)))
        sizes = {"chunk_frames": self.chunk_frames} if self.chunk_frames else {}
        for chunk in conv.convert_stream(audio, self.source_se, self.target_se, self.tau, self._generator, **sizes):
            if remaining <= 0:
                break
            yield chunk[:remaining]
            remaining -= len(chunk)

    def speak(self, sentence: str) -> Iterator[np.ndarray]:
        """One sentence, synthesised then converted chunk by chunk."""
        yield from self.convert(self.engine.synthesize(sentence), self.engine.sample_rate)
