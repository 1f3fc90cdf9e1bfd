"""The consent speaker check: same speaker through other channels, different speakers of one sex and accent.

    python benchmarks/consent_speaker.py [--full]

Each voice reads the consent sentence and, separately, a 30 s paragraph (the sample). Same speaker: the sample as
recorded, and through another "microphone" (telephone band, noise at 20 dB, 0.4 s reverberation, MP3 at 32
kbit/s); different speakers: one voice's sentence with another's sample, within groups of one sex and accent
(espeak-ng's variants, the bundled Piper voice shifted in pitch with sox). Prints, for each case, the score
`check_speaker` gives (the least similar piece of the sample) and how many are refused or accepted at the
threshold in use. `--full` adds more espeak-ng variants (slow: about 40 minutes on 2 busy cores).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from watermark import _edits, _sox  # noqa: E402

from testkit.process import machine  # noqa: E402
from voiceclone.responsible.consent.sentence import consent_sentence  # noqa: E402
from voiceclone.responsible.consent.speaker import MIN_SIMILARITY, check_speaker  # noqa: E402

PARAGRAPH = (
    "The children watched the fishing boats return through the thick morning fog. Nobody knew how long the storm "
    "would last, but the old captain said it would pass before supper. Please remember to water the plants on "
    "Tuesday, and leave the spare key under the blue flower pot by the door. Our quarterly figures look better "
    "than expected, although shipping costs rose sharply in the last few weeks."
)
GROUPS = {
    "US male (espeak-ng)": ["en-us+m1", "en-us+m3", "en-us+m7"],
    "US female (espeak-ng)": ["en-us+f2", "en-us+f4"],
    "GB male (espeak-ng)": ["en-gb-x-rp+m2", "en-gb-scotland+m3"],
    "Piper, pitch-shifted": [-300, 0, 300],
}
MORE = {
    "US male (espeak-ng)": ["en-us+m2", "en-us+m4", "en-us+m5", "en-us+m6"],
    "US female (espeak-ng)": ["en-us+f1", "en-us+f3", "en-us+f5"],
    "GB male (espeak-ng)": ["en-gb+m1", "en-gb+m3"],
    "Piper, pitch-shifted": [-150, 150],
}
CHANNELS = (
    "none",
    "MP3 at 32 kbit/s (sox)",
    "noise at 20 dB SNR",
    "8 kHz telephone band 300-3400 Hz",
    "reverberation (0.4 s)",
)


def espeak(text: str, voice: str) -> tuple[np.ndarray, int]:
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "a.wav")
        subprocess.run(["espeak-ng", "-v", voice, "-w", path, text], check=True, capture_output=True)
        return sf.read(path, dtype="float32")


def voices(sentence: str, full: bool) -> dict:
    """name -> (group, (sentence audio, rate), (paragraph audio, rate))."""
    from voiceclone.tts.piper import PiperEngine

    engine = PiperEngine()
    said = (engine.synthesize(sentence), engine.sample_rate)
    read = (engine.synthesize(PARAGRAPH), engine.sample_rate)
    out = {}
    for group, members in GROUPS.items():
        for member in members + (MORE[group] if full else []):
            if isinstance(member, int):
                out[f"piper{member:+d}"] = (group, _shifted(*said, member), _shifted(*read, member))
            else:
                out[member] = (group, espeak(sentence, member), espeak(PARAGRAPH, member))
    return out


def _shifted(audio: np.ndarray, rate: int, cents: int) -> tuple[np.ndarray, int]:
    return _sox(audio, rate, "wav", effects=["pitch", str(cents)]) if cents else (audio, rate)


def _summary(scores: list[float], word: str, count) -> str:
    return f"max {max(scores):.3f}  median {statistics.median(scores):.3f}  {word} {count}/{len(scores)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="more espeak-ng variants (slow)")
    args = parser.parse_args()
    print(f"machine: {machine()}; threshold {MIN_SIMILARITY}")
    sentence = consent_sentence("Dana Lee", __import__("datetime").date(2026, 12, 6))
    speakers = voices(sentence, args.full)
    edits = _edits()

    print("\nSame speaker: the sentence as read, the sample through a channel (lowest piece's score)")
    for channel in CHANNELS:
        scores = [check_speaker(said, [edits[channel](*read)]).score for _, said, read in speakers.values()]
        refused = sum(s < MIN_SIMILARITY for s in scores)
        print(
            f"  {channel:34} min {min(scores):.3f}  median {statistics.median(scores):.3f}  "
            f"refused {refused}/{len(scores)}"
        )

    print("\nDifferent speakers of one group: one's sentence, another's sample (as recorded)")
    for group in GROUPS:
        names = [name for name, value in speakers.items() if value[0] == group]
        scores = [check_speaker(speakers[a][1], [speakers[b][2]]).score for a in names for b in names if a != b]
        if scores:
            accepted = sum(s >= MIN_SIMILARITY for s in scores)
            print(f"  {group:34} " + _summary(scores, "accepted", accepted))
    across = [
        check_speaker(speakers[a][1], [speakers[b][2]]).score
        for a in speakers
        for b in speakers
        if speakers[a][0] != speakers[b][0]
    ]
    accepted = sum(s >= MIN_SIMILARITY for s in across)
    print(f"  {'across groups':34} " + _summary(across, "accepted", accepted))


if __name__ == "__main__":
    main()
