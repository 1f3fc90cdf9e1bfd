"""A cloned voice: a base TTS engine, the converter, the base voice's data and the target's.

Text goes in sentence by sentence; converted audio comes out chunk by chunk, the first chunk of a sentence
long before the sentence has been converted. Plain Python: the CLI and the Pipecat service both use it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import numpy as np
import torch

from voiceclone.audio.resample import resample
from voiceclone.audio.silence import trim_silence
from voiceclone.cloning.conversion import Conversion, Sampling
from voiceclone.openvoice.sampling import TAU_DEFAULT, check_tau
from voiceclone.responsible.watermark import Watermarker
from voiceclone.tts.base import TTSEngine
from voiceclone.tts.sentences import bound, pause_after, quick_start


class ClonedVoice:
    """Speak sentences in the target voice: base synthesis, then streaming conversion.

    Holds what the voice is (engine, converter, the target's and the base voice's data, the noise generator);
    how one utterance is made (tau, chunk size) is given per call, so a caller never changes a voice another
    caller shares.
    """

    def __init__(
        self,
        engine: TTSEngine,
        converter: Conversion,
        target_se,
        source_se=None,
        tau: float = TAU_DEFAULT,
        seed: int | None = None,
        watermarker: Watermarker | None = None,
    ):
        """Compose a cloned voice.

        Args:
            engine: The base voice.
            converter: A loaded `Conversion` (`OpenVoiceConversion` or `MatcherConversion`).
            target_se: The enrolled voice's data for this converter (an embedding `[1, gin, 1]` or a profile).
            source_se: The base voice's; None learns it (once, cached) from the calibration text.
            tau: Default sampling temperature of a stochastic converter (OpenVoice), 0 (deterministic) to 2.
                A deterministic converter (the matcher) takes none; the value is then only kept.
            seed: Seed of the conversion noise (tau > 0), for reproducible output; None draws fresh noise.
            watermarker: A loaded `Watermarker` (responsible.watermark) that marks every converted chunk, or None.
        """
        self.engine = engine
        self.converter = converter
        self.target_se = target_se
        self.source_se = converter.base_data(engine) if source_se is None else source_se
        self.tau = check_tau(tau)
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
        if self.converter.stochastic:
            sampling = Sampling(self.tau if tau is None else check_tau(tau), self._generator)
            chunks = self.converter.stream(audio, self.source_se, self.target_se, chunk_frames, sampling=sampling)
        else:
            chunks = self.converter.stream(audio, self.source_se, self.target_se, chunk_frames)
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

    def warm_up(self) -> None:
        """Say a word and drop it: the first calls of ONNX Runtime, torch and PerTh allocate and pick their kernels,
        which should happen while the voice loads, not on the first words a listener waits for (tau 0: a seeded
        voice's noise is untouched)."""
        for _ in self.speak("Hello.", tau=0.0):
            pass

    def base_audio(self, unit: str, lead_in: bool = False) -> np.ndarray:
        """The base voice saying one unit, at the engine's rate, without the silence that would only be a wait.

        The silence after a unit that does not end its sentence is cut to the pause its punctuation wants
        (`voiceclone.tts.sentences.pause_after`); with `lead_in` (the first words of an answer, or words going
        on from a unit cut mid-sentence) the silence before it goes too.
        """
        audio = self.engine.synthesize(unit)
        pause = pause_after(unit)
        if not lead_in and pause is None:
            return audio
        cut_end = pause is not None
        return trim_silence(
            audio, self.engine.sample_rate, start=lead_in, end=cut_end, end_keep_s=pause if cut_end else 0.0
        )

    def speak(
        self, sentence: str, tau: float | None = None, chunk_frames: int | None = None, first: bool = False
    ) -> Iterator[np.ndarray]:
        """One sentence, synthesised then converted chunk by chunk; an over-long one in bounded parts.

        Args:
            sentence: Text to say.
            tau: As for `convert`.
            chunk_frames: As for `convert`.
            first: The first sentence of what is said: its first clause or words go ahead alone (`quick_start`),
                so that the first audio comes after a few words' synthesis, not a sentence's.

        Yields:
            Float32 chunks at `sample_rate`.
        """
        units = bound(sentence)
        mid_sentence = False
        for unit in quick_start(units) if first else units:
            audio = self.base_audio(unit, lead_in=mid_sentence)
            mid_sentence = pause_after(unit) is not None
            yield from self.convert(audio, self.engine.sample_rate, tau, chunk_frames)
