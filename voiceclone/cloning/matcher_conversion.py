"""The built-in voice matcher as a `Conversion` (WORLD analysis and resynthesis; no weights, deterministic)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
from loguru import logger

from voiceclone.cache import cache_dir
from voiceclone.cloning.calibration import calibration_speech
from voiceclone.cloning.conversion import SPEECH_RATE
from voiceclone.errors import UserError
from voiceclone.files import write_atomic
from voiceclone.matcher import MATCHER_VERSION, ProfileError, VoiceMatcher, VoiceProfile, extract_profile
from voiceclone.tts.base import TTSEngine
from voiceclone.voices.folder import Voice
from voiceclone.voices.record import ConverterEntry
from voiceclone.voices.store import VoiceLibrary

# The first chunk is short (its latency is what a listener waits for), the rest are steady.
FIRST_CHUNK_S = 0.1
MIN_CHUNK_S = 0.25
FRAME_S = 256 / SPEECH_RATE  # one OpenVoice spectrogram frame: `chunk_frames` is counted in these


class MatcherConversion:
    """The built-in voice matcher. Deterministic: nothing to sample, so `stream` takes no temperature."""

    engine = "matcher"
    stochastic = False

    def __init__(self, sampling_rate: int = SPEECH_RATE):
        self.matcher = VoiceMatcher(sampling_rate)
        self.key = MATCHER_VERSION
        self.sampling_rate = sampling_rate

    @property
    def label(self) -> str:
        return f"voice matcher {self.key}"

    def record(self) -> ConverterEntry:
        return ConverterEntry(engine=self.engine, version=self.key)

    def analyse(self, speech: np.ndarray, rate: int) -> VoiceProfile:
        try:
            return extract_profile(speech, rate)
        except ProfileError as exc:
            raise UserError(f"cannot make a voice profile: {exc}") from None

    def voice_data(self, library: VoiceLibrary, voice: Voice) -> VoiceProfile:
        stored = voice.profile(self.key)
        if stored is not None:
            try:
                profile = VoiceProfile.from_json(stored)
            except ProfileError as exc:
                logger.warning("remaking the damaged profile of voice {!r} ({})", voice.name, exc)
            else:
                if profile.voiced_codebook_db is not None:
                    return profile
                # Stored before codebooks: it still converts, but without the per-frame step; the kept speech
                # gives the full profile.
                logger.info("completing the profile of voice {!r} with its codebook (once)", voice.name)
        speech, rate = voice.speech()
        profile = self.analyse(speech, rate)
        library.add_profile(voice, self.key, profile.to_json())
        return profile

    def base_data(self, engine: TTSEngine) -> VoiceProfile:
        path = cache_dir() / "source-profile" / f"{engine.identity}-{self.key}-{self.sampling_rate}.json"
        if path.is_file():
            try:
                return VoiceProfile.from_json(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError, ProfileError):
                logger.warning("ignoring a damaged cached base-voice profile: {}", path)
        logger.info("learning the base voice's profile (once; cached in {})", path.parent)
        profile = self.analyse(calibration_speech(engine, self.sampling_rate), self.sampling_rate)
        try:
            write_atomic(path, json.dumps(profile.to_json()).encode())
        except OSError as exc:
            logger.warning("cannot cache the base-voice profile in {} ({})", path.parent, exc.strerror)
        return profile

    def stream(
        self, audio: np.ndarray, source: VoiceProfile, target: VoiceProfile, chunk_frames: int | None = None
    ) -> Iterator[np.ndarray]:
        if len(audio) == 0:
            return
        steady = max(MIN_CHUNK_S, (chunk_frames or 64) * FRAME_S)
        yield from self.matcher.convert_stream(audio, source, target, first_chunk_s=FIRST_CHUNK_S, chunk_s=steady)
