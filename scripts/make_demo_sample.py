"""Make a demo recording to enroll when you have none of your own: `python scripts/make_demo_sample.py OUT.wav`.

It is the bundled Piper voice made ~18 % higher in pitch and formants (synthesised slower, then played
faster by relabelling the sample rate), so that the clone audibly differs from the base voice. Use a real
recording of a person (with their consent) for anything else.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TEXT = (
    "Hello! This is a short recording of my voice, made so that it can be cloned. "
    "I am reading a few sentences at an easy pace, in a quiet room, about a meter from the microphone. "
    "The weather was lovely this morning, so we walked to the market and bought apples, bread and cheese."
)
SHIFT = 1.18


def main() -> None:
    from voiceclone.tts import PiperEngine, PiperSettings

    out = Path(sys.argv[1] if len(sys.argv) > 1 else "out/demo-voice.wav")
    out.parent.mkdir(parents=True, exist_ok=True)
    engine = PiperEngine(PiperSettings(length_scale=SHIFT))
    audio = np.concatenate([engine.synthesize(s) for s in TEXT.split(". ")])
    # Played back SHIFT times faster: pitch and formants up, length back to normal; then back to 44.1 kHz.
    shifted = soxr.resample(audio, int(engine.sample_rate * SHIFT), 44100)
    sf.write(out, shifted, 44100)
    print(f"demo recording: {out} ({len(shifted) / 44100:.1f} s)")


if __name__ == "__main__":
    main()
