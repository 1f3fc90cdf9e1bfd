"""Voice matcher speed: profile extraction, whole and streamed conversion of Piper speech (no weights needed).

    python benchmarks/matcher.py [--seconds 5] [--profile-seconds 30] [--runs 5] [--sample-rate 22050]

Prints medians over runs: profile extraction time for `--profile-seconds` of speech, time and real-time factor of
`convert`, time to the first streamed chunk, the streamed total, and the smallest playback margin (how far ahead
of a player that starts at the first chunk the stream stays; negative means the player would have waited). The
target voice is the same speech resynthesised by WORLD with F0 x1.4 and formants x1.12.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from testkit.speech import speech_sample  # noqa: E402
from voiceclone.matcher import VoiceMatcher, extract_profile  # noqa: E402
from voiceclone.matcher.vocoder import pyworld  # noqa: E402
from voiceclone.matcher.world import FRAME_PERIOD_MS, analyze  # noqa: E402


def shifted(speech: np.ndarray, sr: int, f0_factor: float, formant_factor: float) -> np.ndarray:
    """`speech` resynthesised by WORLD with its F0 and formant frequencies scaled: a stand-in target voice."""
    a = analyze(speech, sr)
    bins = a.sp.shape[1]
    src = np.clip(np.arange(bins) / formant_factor, 0, bins - 1)
    sp = np.exp(np.stack([np.interp(src, np.arange(bins), row) for row in np.log(a.sp)]))
    return pyworld.synthesize(a.f0 * f0_factor, np.ascontiguousarray(sp), a.ap, sr, FRAME_PERIOD_MS)


def timed(fn, runs: int) -> tuple[float, object]:
    """Median wall time in seconds of `fn()` over `runs` calls, and the last result."""
    times, result = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--profile-seconds", type=float, default=30.0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sample-rate", type=int, default=22050)
    args = parser.parse_args()
    sr = args.sample_rate

    long_speech = speech_sample(args.profile_seconds, sr)
    audio = long_speech[: int(args.seconds * sr)]
    t_profile, base = timed(lambda: extract_profile(long_speech, sr), max(1, min(args.runs, 3)))
    target = extract_profile(shifted(long_speech, sr, 1.4, 1.12), sr)
    matcher = VoiceMatcher(sr)
    matcher.convert(audio[:sr], base, target)  # warm-up: first calls build caches

    t_whole, _ = timed(lambda: matcher.convert(audio, base, target), args.runs)

    t_first, t_total, margins = [], [], []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        ready, lengths = [], []
        for chunk in matcher.convert_stream(audio, base, target):
            ready.append(time.perf_counter() - t0)
            lengths.append(len(chunk))
        t_first.append(ready[0])
        t_total.append(ready[-1])
        # A player starting with the first chunk needs chunk k when chunks 0..k-1 have played.
        starts = ready[0] + np.concatenate([[0], np.cumsum(lengths)[:-1]]) / sr
        margins.append(float(np.min((starts - np.array(ready))[1:])) if len(ready) > 1 else 0.0)

    med = statistics.median
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"machine: {os.cpu_count()} cores, load average {load} (other work slows every figure)")
    print(f"audio: {args.seconds:.1f} s of Piper speech at {sr} Hz, {args.runs} runs; target F0 x1.4, formants x1.12")
    print(f"extract_profile:      {t_profile * 1000:7.0f} ms   for {args.profile_seconds:.0f} s of speech")
    print(f"convert (whole):      median {t_whole * 1000:7.1f} ms   real-time factor {t_whole / args.seconds:.3f}")
    print(f"convert_stream first: median {med(t_first) * 1000:7.1f} ms   ({len(lengths)} chunks)")
    total = med(t_total)
    print(f"convert_stream total: median {total * 1000:7.1f} ms   real-time factor {total / args.seconds:.3f}")
    print(f"playback margin:      median {med(margins) * 1000:7.1f} ms   (smallest lead over a player; < 0 = stall)")


if __name__ == "__main__":
    main()
