"""The OpenVoice tone-color converter as a `Conversion`: embeddings (the voice's, the base voice's) and streaming.

Needs a converter checkpoint (`voiceclone models download`). Stochastic: `stream` takes a `Sampling` (tau and a
noise generator).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from loguru import logger

from voiceclone.audio.resample import resample
from voiceclone.cache import cache_dir, file_sha256
from voiceclone.cloning.calibration import calibration_speech
from voiceclone.cloning.conversion import Sampling
from voiceclone.errors import UserError
from voiceclone.files import npy_bytes, write_atomic
from voiceclone.openvoice.converter import ToneColorConverter
from voiceclone.tts.base import TTSEngine
from voiceclone.voices.folder import Voice
from voiceclone.voices.record import ConverterEntry
from voiceclone.voices.store import VoiceLibrary

PIECE_S = 10.0  # the reference cuts speech into pieces of about 10 s and averages their embeddings


def embed(converter: ToneColorConverter, speech: np.ndarray) -> np.ndarray:
    """The voice's embedding: the mean over pieces of about 10 s, as the reference makes it."""
    pieces = max(1, round(len(speech) / converter.sampling_rate / PIECE_S))
    return converter.extract_se(np.array_split(speech, pieces)).numpy()


def embedding_for(library: VoiceLibrary, voice: Voice, converter: ToneColorConverter) -> np.ndarray:
    """The voice's embedding for this converter; re-made from the stored speech when the version or weights differ."""
    stored = voice.embedding(converter.version)
    made_by = voice.embedding_checkpoint(converter.version)
    if stored is not None and (made_by is None or made_by == converter.checkpoint_sha256):
        return stored
    speech, sr = voice.speech()
    embedding = embed(converter, resample(speech, sr, converter.sampling_rate))
    library.add_embedding(voice, converter.version, embedding, converter.checkpoint_sha256)
    return embedding


def source_embedding(engine: TTSEngine, converter: ToneColorConverter) -> np.ndarray:
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
        logger.warning("ignoring a damaged cached base-voice embedding: {}", path)
    logger.info("learning the base voice's tone color (once; cached in {})", path.parent)
    embedding = embed(converter, calibration_speech(engine, converter.sampling_rate))
    try:
        write_atomic(path, npy_bytes(embedding))
    except OSError as exc:
        logger.warning("cannot cache the base-voice embedding in {} ({})", path.parent, exc.strerror)
    return embedding


class OpenVoiceConversion:
    """The OpenVoice tone-color converter (needs its checkpoint)."""

    engine = "openvoice"
    stochastic = True

    def __init__(self, converter: ToneColorConverter):
        """Args: converter: a loaded `ToneColorConverter`."""
        self.converter = converter
        self.key = converter.version
        self.sampling_rate = converter.sampling_rate

    @property
    def label(self) -> str:
        return f"OpenVoice {self.key}"

    def record(self) -> ConverterEntry:
        return ConverterEntry(engine=self.engine, version=self.key, checkpoint_sha256=self.converter.checkpoint_sha256)

    def analyse(self, speech: np.ndarray, rate: int) -> np.ndarray:
        return embed(self.converter, resample(speech, rate, self.sampling_rate))

    def voice_data(self, library: VoiceLibrary, voice: Voice) -> np.ndarray:
        return embedding_for(library, voice, self.converter)

    def base_data(self, engine: TTSEngine) -> np.ndarray:
        return source_embedding(engine, self.converter)

    def stream(
        self, audio: np.ndarray, source, target, chunk_frames: int | None = None, sampling: Sampling = Sampling()
    ) -> Iterator[np.ndarray]:
        conv = self.converter
        if len(audio) == 0:
            return
        hop = conv.config.samples_per_frame
        remaining = len(audio)
        # Pad to whole frames (at least one FFT's worth) so that no tail sample is dropped, then cut back.
        padded = max(-(-len(audio) // hop) * hop, conv.config.filter_length)
        audio = np.pad(audio, (0, padded - len(audio)))
        sizes = {"chunk_frames": chunk_frames} if chunk_frames else {}
        for chunk in conv.convert_stream(audio, source, target, sampling.tau, sampling.generator, **sizes):
            if remaining <= 0:
                break
            yield chunk[:remaining]
            remaining -= len(chunk)


def load_openvoice(folder: Path, device: str) -> OpenVoiceConversion:
    """Load an OpenVoice converter folder; a bad device is a user error."""
    checkpoint = folder / "checkpoint.pth"
    known = file_sha256(checkpoint) if checkpoint.is_file() else None
    try:
        return OpenVoiceConversion(ToneColorConverter.load(folder, device=device, checkpoint_sha256=known))
    except ValueError as exc:  # a bad --device
        raise UserError(str(exc)) from None
