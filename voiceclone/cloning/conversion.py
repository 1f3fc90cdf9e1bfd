"""The two converters behind one small interface, and the choice between them (`auto | openvoice | matcher`).

A `Conversion` says what a voice stores for it (an OpenVoice embedding, a matcher profile), how that is made from
speech, what the base voice's own is (made once from the calibration text, cached), and converts base-voice audio
chunk by chunk. `ClonedVoice`, `speak`, `eval` and the bot only see this interface.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import numpy as np

from voiceclone.cache import cache_dir
from voiceclone.errors import UserError
from voiceclone.files import write_atomic
from voiceclone.voices.folder import Voice
from voiceclone.voices.store import VoiceLibrary

log = logging.getLogger(__name__)

ENGINES = ("auto", "openvoice", "matcher")
# The rate both converters work at and voices keep their speech at (the published OpenVoice converters' rate).
SPEECH_RATE = 22050


class Conversion(Protocol):
    """A converter as the rest of the product uses it."""

    engine: str  # "openvoice" or "matcher"
    key: str  # what a voice stores for it: "v2"/"v1" (embedding-KEY.npy) or "m1" (profile-KEY.json)
    sampling_rate: int  # Hz, of the audio in and out

    @property
    def label(self) -> str:
        """For people: "OpenVoice v2", "voice matcher m1"."""
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

    def stream(
        self, audio: np.ndarray, source: object, target: object, tau: float, generator, chunk_frames: int | None
    ) -> Iterator[np.ndarray]:
        """Converted chunks of `audio` (at `sampling_rate`); joined, exactly as long as `audio`."""
        ...


# ----------------------------------------------------------------------------------------------------- OpenVoice
class OpenVoiceConversion:
    """The OpenVoice tone-color converter (needs its checkpoint). `tau` and a noise generator apply."""

    engine = "openvoice"

    def __init__(self, converter):
        """Args: converter: a loaded `ToneColorConverter`."""
        self.converter = converter
        self.key = converter.version
        self.sampling_rate = converter.sampling_rate

    @property
    def label(self) -> str:
        return f"OpenVoice {self.key}"

    def analyse(self, speech: np.ndarray, rate: int) -> np.ndarray:
        from voiceclone.audio.resample import resample
        from voiceclone.cloning.enrollment import embed

        return embed(self.converter, resample(speech, rate, self.sampling_rate))

    def record(self) -> dict:
        """What voice.json says of this converter."""
        return {"engine": self.engine, "version": self.key, "checkpoint_sha256": self.converter.checkpoint_sha256}

    def voice_data(self, library: VoiceLibrary, voice: Voice) -> np.ndarray:
        from voiceclone.cloning.enrollment import embedding_for

        return embedding_for(library, voice, self.converter)

    def base_data(self, engine) -> np.ndarray:
        from voiceclone.cloning.cloned import source_embedding

        return source_embedding(engine, self.converter)

    def stream(
        self, audio: np.ndarray, source, target, tau: float, generator, chunk_frames: int | None
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
        for chunk in conv.convert_stream(audio, source, target, tau, generator, **sizes):
            if remaining <= 0:
                break
            yield chunk[:remaining]
            remaining -= len(chunk)


# ------------------------------------------------------------------------------------------------------- matcher
class MatcherConversion:
    """The built-in voice matcher (WORLD analysis-synthesis; no weights). `tau` and the generator do not apply."""

    engine = "matcher"

    def __init__(self, sampling_rate: int = SPEECH_RATE):
        from voiceclone.matcher import MATCHER_VERSION, VoiceMatcher

        self.matcher = VoiceMatcher(sampling_rate)
        self.key = MATCHER_VERSION
        self.sampling_rate = sampling_rate

    @property
    def label(self) -> str:
        return f"voice matcher {self.key}"

    def analyse(self, speech: np.ndarray, rate: int):
        from voiceclone.matcher import ProfileError, extract_profile

        try:
            return extract_profile(speech, rate)
        except ProfileError as exc:
            raise UserError(f"cannot make a voice profile: {exc}") from None

    def record(self) -> dict:
        """What voice.json says of this converter."""
        return {"engine": self.engine, "version": self.key}

    def voice_data(self, library: VoiceLibrary, voice: Voice):
        from voiceclone.matcher import ProfileError, VoiceProfile

        stored = voice.profile(self.key)
        if stored is not None:
            try:
                return VoiceProfile.from_json(stored)
            except ProfileError as exc:
                log.warning("remaking the damaged profile of voice %r (%s)", voice.name, exc)
        speech, rate = voice.speech()
        profile = self.analyse(speech, rate)
        library.add_profile(voice, self.key, profile.to_json())
        return profile

    def base_data(self, engine):
        from voiceclone.cloning.cloned import calibration_speech
        from voiceclone.matcher import ProfileError, VoiceProfile

        path = cache_dir() / "source-profile" / f"{engine.identity}-{self.key}-{self.sampling_rate}.json"
        if path.is_file():
            try:
                return VoiceProfile.from_json(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError, ProfileError):
                log.warning("ignoring a damaged cached base-voice profile: %s", path)
        log.info("learning the base voice's profile (once; cached in %s)", path.parent)
        profile = self.analyse(calibration_speech(engine, self.sampling_rate), self.sampling_rate)
        try:
            write_atomic(path, json.dumps(profile.to_json()).encode())
        except OSError as exc:
            log.warning("cannot cache the base-voice profile in %s (%s)", path.parent, exc.strerror)
        return profile

    def stream(
        self, audio: np.ndarray, source, target, tau: float, generator, chunk_frames: int | None
    ) -> Iterator[np.ndarray]:
        if len(audio) == 0:
            return
        # The OpenVoice schedule's sizes, in seconds: a first chunk of 8 frames, then the steady size.
        frame_s = 256 / SPEECH_RATE
        steady = max(0.25, (chunk_frames or 64) * frame_s)
        yield from self.matcher.convert_stream(audio, source, target, first_chunk_s=0.1, chunk_s=steady)


# -------------------------------------------------------------------------------------------------------- choice
def load_openvoice(folder: Path, device: str) -> OpenVoiceConversion:
    """Load an OpenVoice converter folder; a bad device is a user error."""
    from voiceclone.cache import file_sha256
    from voiceclone.openvoice import ToneColorConverter

    checkpoint = folder / "checkpoint.pth"
    known = file_sha256(checkpoint) if checkpoint.is_file() else None
    try:
        return OpenVoiceConversion(ToneColorConverter.load(folder, device=device, checkpoint_sha256=known))
    except ValueError as exc:  # a bad --device
        raise UserError(str(exc)) from None


def openvoice_folder(settings, store) -> Path | None:
    """The OpenVoice converter folder the settings name (`folder`, else the installed `version`), if any."""
    if settings.folder:
        return Path(settings.folder).expanduser()
    return store.locate(settings.version)


def choose(settings, store, notice: Callable[[str], None] | None = None) -> Callable[[], Conversion]:
    """Which converter to use, as a loader (call it to load): decided now, loaded when wanted.

    Args:
        settings: The `tts.converter` settings (engine auto/openvoice/matcher, version, folder, device).
        store: The converter store (`ModelStore`), where OpenVoice checkpoints are installed.
        notice: Told once, in one line, when `auto` falls back to the matcher.

    Returns:
        A function that loads the chosen converter.

    Raises:
        UserError: `openvoice` asked for and not installed (the store's message says how to get it).
    """
    engine = settings.engine
    if engine == "matcher":
        if settings.folder:
            raise UserError("--converter-dir names an OpenVoice converter: use it with --converter openvoice or auto")
        return MatcherConversion
    folder = openvoice_folder(settings, store)
    if folder is None:
        if engine == "openvoice":
            store.require(settings.version)  # raises: how to download it
        if notice is not None:
            notice(
                f"no OpenVoice {settings.version} converter installed: using the built-in voice matcher "
                f"(get OpenVoice with `voiceclone models download`)"
            )
        return MatcherConversion
    return lambda: load_openvoice(folder, settings.device)


def as_conversion(converter) -> Conversion:
    """A `Conversion` for a loaded `ToneColorConverter` (or a conversion, unchanged)."""
    if hasattr(converter, "analyse") and hasattr(converter, "stream"):
        return converter
    return OpenVoiceConversion(converter)
