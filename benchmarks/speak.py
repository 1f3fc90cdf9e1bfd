"""`speak` speed: text to cloned speech with the bundled Piper voice and a real-size converter (random weights).

    python benchmarks/speak.py [--runs 5] [--threads 2]

Models are loaded first (as in a running bot). Prints medians for a 12-word sentence and a 4-sentence
paragraph: time from text to the first audio chunk, real-time factor, and how long a player that starts at
the first chunk would have waited for audio (0 = never). The same is shown for the reference recipe, which
converts a whole sentence before any of it can play.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from testkit.converters import write_random_converter  # noqa: E402
from voiceclone.cloning.cloned import ClonedVoice  # noqa: E402
from voiceclone.cloning.openvoice_conversion import OpenVoiceConversion  # noqa: E402
from voiceclone.openvoice.converter import ToneColorConverter  # noqa: E402
from voiceclone.tts import PiperEngine  # noqa: E402
from voiceclone.tts.sentences import split_sentences  # noqa: E402

SENTENCE = "The quick brown fox jumps over the lazy dog near the quiet river bank."
PARAGRAPH = (
    "Thanks for calling, I can help you with that. Your order shipped this morning and should arrive on Friday. "
    "If it does not, just reply to this message and we will send a new one. Is there anything else I can do?"
)


def run(voice: ClonedVoice, text: str, streamed: bool) -> tuple[float, float, float, float]:
    """(first audio s, total s, audio s, longest wait of a player that starts at the first chunk)."""
    t0 = time.perf_counter()
    ready, lengths = [], []
    for sentence in split_sentences(text):
        if streamed:
            for chunk in voice.speak(sentence):
                ready.append(time.perf_counter() - t0)
                lengths.append(len(chunk))
        else:  # the reference recipe: synthesise, convert the whole sentence, then play it
            base = voice.engine.synthesize(sentence)
            whole = voice.converter.converter  # the OpenVoice `ToneColorConverter` behind the `Conversion`
            out = whole.convert(base, voice.source_se, voice.target_se, voice.tau)
            ready.append(time.perf_counter() - t0)
            lengths.append(len(out))
    sr = voice.sample_rate
    wait, clock = 0.0, ready[0]
    for t, n in zip(ready, lengths, strict=False):
        if t > clock:  # the player ran dry before this chunk existed
            wait = max(wait, t - clock)
            clock = t
        clock += n / sr
    return ready[0], ready[-1], sum(lengths) / sr, wait


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        import os

        os.environ.setdefault("VOICECLONE_CACHE_DIR", str(Path(tmp) / "cache"))
        converter = ToneColorConverter.load(
            write_random_converter(Path(tmp) / "conv"), device="cpu", threads=args.threads
        )
        target = torch.randn(1, 256, 1, generator=torch.Generator().manual_seed(0)).numpy()
        voice = ClonedVoice(PiperEngine(), OpenVoiceConversion(converter), target, tau=0.3, seed=0)
        run(voice, "Warm up.", True)
        med = statistics.median
        print(
            f"machine: {torch.get_num_threads()} threads, torch {torch.__version__}; "
            "Piper en_US joe + real V2 size converter"
        )
        for label, text in (("12-word sentence", SENTENCE), ("4-sentence paragraph", PARAGRAPH)):
            for streamed in (True, False):
                rows = [run(voice, text, streamed) for _ in range(args.runs)]
                first, total, audio, wait = (med(r[i] for r in rows) for i in range(4))
                name = "voiceclone (streamed)" if streamed else "reference recipe (whole sentence)"
                print(
                    f"{label:21s} {name:34s} first audio {first * 1000:6.0f} ms   "
                    f"real-time factor {total / audio:.3f}   "
                    f"longest playback wait {wait * 1000:5.0f} ms   ({audio:.1f} s of audio, {args.runs} runs)"
                )


if __name__ == "__main__":
    main()
