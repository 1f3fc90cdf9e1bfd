"""What a base voice reads, once, so that a converter can learn the base voice's own tone color or profile."""

from __future__ import annotations

import numpy as np

from voiceclone.audio.resample import resample
from voiceclone.audio.speech import speech_mask
from voiceclone.tts.base import TTSEngine
from voiceclone.tts.sentences import split_sentences

# About 25 s of varied English.
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
