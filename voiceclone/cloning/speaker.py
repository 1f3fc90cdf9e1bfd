"""What `speak` speaks with, from a config: the base voice alone, or cloned into an enrolled voice.

Plain Python between the CLI and the layers: the CLI parses flags into a config and renders; this module
chooses the engine, resolves `--voice`, and composes the cloned voice.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from voiceclone.cloning.cloned import ClonedVoice
from voiceclone.cloning.conversion import Conversion
from voiceclone.cloning.enrollment import target_data
from voiceclone.config.sections import TTSConfig
from voiceclone.responsible.watermark import Watermarker
from voiceclone.tts import PiperSettings, TTSEngine, make_engine
from voiceclone.voices.store import VoiceLibrary

# Piper draws its own noise inside the model (ONNX Runtime's seed does not reach it), so a seeded run turns it off.
_QUIET_PIPER = PiperSettings(noise_scale=0.0, noise_w_scale=0.0)


@dataclass
class Speaker:
    """Speaks one sentence at a time, chunk by chunk."""

    speak: Callable[[str], Iterator[np.ndarray]]
    sample_rate: int
    label: str  # "voice 'alice'", "me.wav (12.3 s of speech)", "piper base voice"


def base_engine(tts: TTSConfig) -> TTSEngine:
    """The base voice engine the `tts` settings name; a seed makes Piper's own variation zero (reproducible)."""
    piper = tts.piper.updated(_QUIET_PIPER) if tts.seed is not None else tts.piper
    return make_engine(tts.engine, piper=piper, openai=tts.openai)


def base_speaker(engine: TTSEngine, engine_name: str) -> Speaker:
    """The base voice, unconverted (for A/B listening)."""
    return Speaker(
        lambda sentence: iter([engine.synthesize(sentence)]), engine.sample_rate, f"{engine_name} base voice"
    )


def load_watermarker(enabled: bool) -> Watermarker | None:
    """The provenance mark's model, loaded now (about 1.5 s, once per process), or None when turned off."""
    if not enabled:
        return None
    return Watermarker().load()


def cloned_speaker(
    tts: TTSConfig,
    engine: TTSEngine,
    library: VoiceLibrary,
    conversion: Conversion,
    watermarker: Watermarker | None = None,
) -> Speaker:
    """The base voice converted into `tts.voice` (an enrolled name or an audio file).

    Args:
        tts: The settings (voice, tau, seed).
        engine: The base voice.
        library: Where enrolled voices are looked up.
        conversion: A loaded converter (`voiceclone.cloning.conversion.Conversion`).
        watermarker: Marks every converted chunk (a loaded `Watermarker`), or None.

    Returns:
        A speaker whose chunks come at the converter's rate.
    """
    assert tts.voice is not None
    target, label = target_data(library, tts.voice, conversion)
    cloned = ClonedVoice(engine, conversion, target, tau=tts.tau, seed=tts.seed, watermarker=watermarker)
    cloned.warm_up()
    sentences = itertools.count()

    def speak(sentence: str) -> Iterator[np.ndarray]:
        return cloned.speak(sentence, first=next(sentences) == 0)  # the first words go ahead of the first sentence

    return Speaker(speak, cloned.sample_rate, f"{label} ({conversion.label})")


def eval_speakers(
    tts: TTSConfig,
    engine: TTSEngine,
    library: VoiceLibrary,
    voice,
    conversions: list[Conversion],
    watermarker: Watermarker | None = None,
) -> dict[str, Callable[[str], tuple[np.ndarray, int]]]:
    """The voices `voiceclone eval` compares: the base voice ("base") and a clone per converter.

    Args:
        tts: The settings (tau, seed).
        engine: The base voice.
        library: The voice library (a clone's data is made and stored if missing).
        voice: The enrolled voice (a `Voice`).
        conversions: Loaded converters; each gives a row labelled "clone (ENGINE)".
        watermarker: Marks the clones as `speak` does (so what is measured is what users hear), or None.

    Returns:
        Label -> a function speaking one sentence whole: (float32 audio, rate in Hz).
    """
    speakers: dict[str, Callable[[str], tuple[np.ndarray, int]]] = {
        "base": lambda sentence: (engine.synthesize(sentence), engine.sample_rate)
    }
    for conversion in conversions:
        data = conversion.voice_data(library, voice)
        cloned = ClonedVoice(engine, conversion, data, tau=tts.tau, seed=tts.seed, watermarker=watermarker)

        def speak(sentence: str, cloned=cloned) -> tuple[np.ndarray, int]:
            return np.concatenate(list(cloned.speak(sentence)) or [np.zeros(0, np.float32)]), cloned.sample_rate

        speakers[f"clone ({conversion.engine})"] = speak
    return speakers
