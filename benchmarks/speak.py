"""`speak` speed as a user sees it: text to the first audio, with each converter and the provenance mark.

    python benchmarks/speak.py [--runs 9] [--threads 2] [--no-mark]

Everything is loaded and warmed first (as `voiceclone speak` does before its clock starts), then each text is
spoken the way the CLI speaks it (`speak_to` over `ClonedVoice.speak`, the first sentence's first words ahead).
For a 12-word sentence: first audio, median and worst of `--runs`. For a 4-sentence paragraph: the real-time
factor and how long a player that starts at the first chunk would have waited for audio (0 = never).

Converters: the built-in matcher, and OpenVoice V2's real-size network with random weights (the speed of the
real one; no download). The base voice alone (`--no-clone`) and the reference recipe (OpenVoice converting a whole
sentence before any of it plays) are shown for comparison. Goal (issue 18): first audio <= 150 ms with either
converter, the mark on, on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from matcher import shifted  # noqa: E402  (benchmarks/matcher.py, beside this file)

from testkit.converters import write_random_converter  # noqa: E402
from testkit.speech import speech_sample  # noqa: E402
from voiceclone.cloning.cloned import ClonedVoice  # noqa: E402
from voiceclone.cloning.conversion import SPEECH_RATE  # noqa: E402
from voiceclone.cloning.matcher_conversion import MatcherConversion  # noqa: E402
from voiceclone.cloning.openvoice_conversion import OpenVoiceConversion  # noqa: E402
from voiceclone.matcher import extract_profile  # noqa: E402
from voiceclone.openvoice.converter import ToneColorConverter  # noqa: E402
from voiceclone.responsible.watermark import Watermarker  # noqa: E402
from voiceclone.speak.run import speak_to  # noqa: E402
from voiceclone.tts import PiperEngine  # noqa: E402
from voiceclone.tts.sentences import split_sentences  # noqa: E402

SENTENCE = "The quick brown fox jumps over the lazy dog near the quiet river bank."
PARAGRAPH = (
    "Thanks for calling, I can help you with that. Your order shipped this morning and should arrive on Friday. "
    "If it does not, just reply to this message and we will send a new one. Is there anything else I can do?"
)
GOAL_MS = 150


class Timeline:
    """A sink that notes when each piece of audio arrived and how long it is."""

    def __init__(self, rate: int):
        self.rate = rate
        self.arrivals: list[tuple[float, int]] = []

    def write(self, chunk: np.ndarray) -> None:
        self.arrivals.append((time.perf_counter(), len(chunk)))

    def close(self, complete: bool) -> None:
        pass

    def longest_wait(self, start: float) -> float:
        """How long a player that starts at the first chunk would have waited for audio, at worst."""
        wait, clock = 0.0, self.arrivals[0][0]
        for t, n in self.arrivals:
            if t > clock:
                wait, clock = max(wait, t - clock), t
            clock += n / self.rate
        return wait


def speak_once(source, rate: int, text: str) -> tuple[float, float, float]:
    """(first audio s, real-time factor, longest playback wait s) for `text`, spoken as `voiceclone speak` does."""
    sink = Timeline(rate)
    start = time.perf_counter()
    stats = speak_to(split_sentences(text), source(), rate, [sink], rate)
    return stats.first_audio_s, stats.real_time_factor, sink.longest_wait(start)


def cloned_source(voice: ClonedVoice):
    """A fresh `speak` per run: each run's first sentence has its first words go ahead (speaker.cloned_speaker)."""

    def fresh():
        count = iter(range(1_000_000))
        return lambda sentence: voice.speak(sentence, first=next(count) == 0)

    return fresh


def reference_source(voice: ClonedVoice):
    """OpenVoice's own recipe: synthesise, convert the whole sentence, then it can play."""
    whole = voice.converter.converter

    def fresh():
        def speak(sentence):
            base = voice.engine.synthesize(sentence)
            yield whole.convert(base, voice.source_se, voice.target_se, voice.tau)

        return speak

    return fresh


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--threads", type=int, default=2, help="torch threads for OpenVoice")
    parser.add_argument("--no-mark", action="store_true", help="without the PerTh mark (as --no-watermark)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("VOICECLONE_CACHE_DIR", str(Path(tmp) / "cache"))
        engine = PiperEngine()
        marker = None if args.no_mark else Watermarker().load()
        matcher = MatcherConversion()
        # A stand-in target: 20 s of the base voice, higher and with shorter formants (the matcher's benchmark's).
        target_profile = extract_profile(shifted(speech_sample(20.0, SPEECH_RATE), SPEECH_RATE, 1.4, 1.12), SPEECH_RATE)
        openvoice = OpenVoiceConversion(
            ToneColorConverter.load(write_random_converter(Path(tmp) / "conv"), device="cpu", threads=args.threads)
        )
        target_se = torch.randn(1, 256, 1, generator=torch.Generator().manual_seed(0)).numpy()
        voices = {
            "matcher": ClonedVoice(engine, matcher, target_profile, watermarker=marker),
            "OpenVoice": ClonedVoice(engine, openvoice, target_se, tau=0.3, seed=0, watermarker=marker),
        }
        for voice in voices.values():
            voice.warm_up()
        rows = [(f"{name} + mark" if marker else name, cloned_source(v), v.sample_rate) for name, v in voices.items()]
        whole_base = lambda: lambda s: iter([engine.synthesize(s)])  # noqa: E731  (as speaker.base_speaker)
        rows.append(("base voice alone (--no-clone)", whole_base, engine.sample_rate))
        rows.append(("OpenVoice reference recipe, no mark", reference_source(voices["OpenVoice"]), 22050))

        print(
            f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
            f"load average {os.getloadavg()[0]:.2f}; torch {torch.__version__} ({torch.get_num_threads()} threads); "
            f"Piper en_US joe; OpenVoice V2 real size, random weights; mark {'off' if args.no_mark else 'PerTh'}"
        )
        med = statistics.median
        for label, source, rate in rows:
            firsts = [speak_once(source, rate, SENTENCE)[0] for _ in range(args.runs)]
            paragraph = [speak_once(source, rate, PARAGRAPH) for _ in range(max(3, args.runs // 3))]
            print(
                f"{label:38s} 12 words: first audio median {med(firsts) * 1000:4.0f} ms, worst "
                f"{max(firsts) * 1000:4.0f} ms | paragraph: real-time factor {med(p[1] for p in paragraph):.3f}, "
                f"longest playback wait {med(p[2] for p in paragraph) * 1000:4.0f} ms"
            )
        print(
            f"goal: first audio <= {GOAL_MS} ms with either converter and the mark; load average at the end "
            f"{os.getloadavg()[0]:.2f}"
        )


if __name__ == "__main__":
    main()
