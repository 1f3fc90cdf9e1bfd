"""A cloned voice: a base TTS engine, the converter, the base voice's embedding and the target's.

Text goes in sentence by sentence; converted audio comes out chunk by chunk, the first chunk of a sentence
long before the sentence has been converted. Plain Python: the CLI and the Pipecat service both use it.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator

import numpy as np
import torch

from voiceclone.audio.resample import resample
from voiceclone.audio.speech import speech_mask
from voiceclone.cache import cache_dir
from voiceclone.cloning.enrollment import embed
from voiceclone.files import npy_bytes, write_atomic
from voiceclone.tts.base import TTSEngine
from voiceclone.tts.sentences import bound, split_sentences

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


def calibration_speech(engine: TTSEngine, sample_rate: int) -> np.ndarray:
    """The base voice reading the calibration text, at `sample_rate`, with its pauses removed (about 20 s)."""
    audio = np.concatenate([engine.synthesize(s) for s in split_sentences(CALIBRATION_TEXT)])
    audio = resample(audio, engine.sample_rate, sample_rate)
    mask = speech_mask(audio, sample_rate)
    return audio[mask] if mask.sum() > sample_rate else audio


def source_embedding(engine: TTSEngine, converter) -> np.ndarray:
    """The base voice's OpenVoice embedding for this converter: made once from the calibration text, then cached."""
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
    embedding = embed(converter, calibration_speech(engine, converter.sampling_rate))
    try:
        write_atomic(path, npy_bytes(embedding))
    except OSError as exc:
        log.warning("cannot cache the base-voice embedding in %s (%s)", path.parent, exc.strerror)
    return embedding


class ClonedVoice:
    """Speak sentences in the target voice: base synthesis, then streaming conversion.

    Holds what the voice is (engine, converter, the target's and the base voice's data, the noise generator);
    how one utterance is made (tau, chunk size) is given per call, so a caller never changes a voice another
    caller shares.
    """

    def __init__(
        self,
        engine: TTSEngine,
        converter,
        target_se,
        source_se=None,
        tau: float = 0.3,
        seed: int | None = None,
        watermarker=None,
    ):
        """Compose a cloned voice.

        Args:
            engine: The base voice.
            converter: A `Conversion` (see `voiceclone.cloning.conversion`), or a loaded `ToneColorConverter`.
            target_se: The enrolled voice's data for this converter (an embedding `[1, gin, 1]` or a profile).
            source_se: The base voice's; None learns it (once, cached) from the calibration text.
            tau: Default conversion sampling temperature, 0 (deterministic) to 2; 0.3 is OpenVoice's default.
                The matcher is deterministic and ignores it.
            seed: Seed of the conversion noise (tau > 0), for reproducible output; None draws fresh noise.
            watermarker: A loaded `Watermarker` (responsible.watermark) that marks every converted chunk, or None.
        """
        from voiceclone.cloning.conversion import as_conversion

        self.engine = engine
        self.converter = as_conversion(converter)
        self.target_se = target_se
        self.source_se = self.converter.base_data(engine) if source_se is None else source_se
        self.tau = tau
        self._generator = torch.Generator().manual_seed(seed) if seed is not None else None
        self.watermarker = watermarker

    def with_target(self, target_se) -> ClonedVoice:
        """The same base voice and converter speaking as another enrolled voice (nothing is reloaded)."""
        other = copy.copy(self)
        other.target_se = target_se
        return other

    @property
    def sample_rate(self) -> int:
        """The rate of the converted audio, in Hz (22050 for both converters)."""
        return self.converter.sampling_rate

    def convert(
        self, base_audio: np.ndarray, base_rate: int, tau: float | None = None, chunk_frames: int | None = None
    ) -> Iterator[np.ndarray]:
        """Convert one sentence of base-voice audio, chunk by chunk.

        Args:
            base_audio: Float32 mono samples in [-1, 1].
            base_rate: Their sample rate in Hz (resampled to the converter's).
            tau: Sampling temperature for this utterance, 0 to 2; None uses the voice's default.
            chunk_frames: Steady chunk size in spectrogram frames (256 samples each at 22050 Hz); None uses
                the converter's (256 frames, about 3 s); the first chunks are smaller either way.

        Yields:
            Float32 chunks at `sample_rate`; joined, exactly as long as the resampled input.
        """
        audio = resample(base_audio, base_rate, self.sample_rate)
        tau = self.tau if tau is None else tau
        chunks = self.converter.stream(audio, self.source_se, self.target_se, tau, self._generator, chunk_frames)
        if self.watermarker is None:
            yield from chunks
            return
        # Marked chunk by chunk (PerTh holds back 10 ms at each boundary and adds ~4-9 ms to the first chunk).
        marker = self.watermarker.stream(self.sample_rate)
        for chunk in chunks:
            marked = marker.push(chunk)
            if len(marked):
                yield marked
        tail = marker.flush()
        if len(tail):
            yield tail

    def speak(self, sentence: str, tau: float | None = None, chunk_frames: int | None = None) -> Iterator[np.ndarray]:
        """One sentence, synthesised then converted chunk by chunk; an over-long one in bounded parts.

        Args:
            sentence: Text to say.
            tau: As for `convert`.
            chunk_frames: As for `convert`.

        Yields:
            Float32 chunks at `sample_rate`.
        """
        for unit in bound(sentence):
            yield from self.convert(self.engine.synthesize(unit), self.engine.sample_rate, tau, chunk_frames)
