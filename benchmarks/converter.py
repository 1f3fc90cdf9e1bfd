"""Converter speed at the real V2 size (random weights): whole and streamed conversion of 5 s of speech.

    python benchmarks/converter.py [--seconds 5] [--threads 2] [--runs 5] [--device cpu]

Prints medians over runs: time and real-time factor of `convert`, time to the first streamed chunk, the
streamed total, the smallest playback margin (how far ahead of a player that starts at the first chunk the
stream stays; negative means the player would have waited), and the process's peak memory.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from testkit.converters import write_random_converter  # noqa: E402
from testkit.speech import speech_sample  # noqa: E402
from voiceclone.openvoice.converter import ToneColorConverter  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = write_random_converter(Path(tmp) / "converter")
        converter = ToneColorConverter.load(folder, device=args.device, threads=args.threads)
    sr = converter.sampling_rate
    audio = speech_sample(args.seconds, sr)
    src = converter.extract_se([audio])
    tgt = torch.randn(1, 256, 1, generator=torch.Generator().manual_seed(1))
    converter.convert(audio[:sr], src, tgt, tau=0.0)  # warm-up: first calls allocate and pick kernels

    t_embed = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        converter.extract_se([audio])
        t_embed.append(time.perf_counter() - t0)

    t_whole = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        whole = converter.convert(audio, src, tgt, tau=0.3, generator=torch.Generator().manual_seed(0))
        t_whole.append(time.perf_counter() - t0)

    t_first, t_total, margins = [], [], []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        ready, lengths = [], []
        for chunk in converter.convert_stream(audio, src, tgt, tau=0.3, generator=torch.Generator().manual_seed(0)):
            ready.append(time.perf_counter() - t0)
            lengths.append(len(chunk))
        t_first.append(ready[0])
        t_total.append(ready[-1])
        # A player starting with the first chunk needs chunk k when chunks 0..k-1 have played.
        starts = ready[0] + np.concatenate([[0], np.cumsum(lengths)[:-1]]) / sr
        margins.append(float(np.min((starts - np.array(ready))[1:])) if len(ready) > 1 else 0.0)
    streamed = np.concatenate(list(converter.convert_stream(audio, src, tgt, 0.3, torch.Generator().manual_seed(0))))

    med = statistics.median
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"machine: {torch.get_num_threads()} threads, device {converter.device}, torch {torch.__version__}")
    print(f"audio: {args.seconds:.1f} s speech at {sr} Hz, real V2 size (random weights), {args.runs} runs")
    print(f"extract_se:           median {med(t_embed) * 1000:7.1f} ms")
    print(
        f"convert (whole):      median {med(t_whole) * 1000:7.1f} ms   "
        f"real-time factor {med(t_whole) / args.seconds:.3f}"
    )
    print(f"convert_stream first: median {med(t_first) * 1000:7.1f} ms   ({len(lengths)} chunks)")
    print(
        f"convert_stream total: median {med(t_total) * 1000:7.1f} ms   "
        f"real-time factor {med(t_total) / args.seconds:.3f}"
    )
    print(f"playback margin:      median {med(margins) * 1000:7.1f} ms   (smallest lead over a player; < 0 = stall)")
    print(f"stream vs whole:      max |diff| {np.max(np.abs(streamed - whole)):.2e}")
    print(f"peak memory:          {peak_mb:7.0f} MB (process RSS)")


if __name__ == "__main__":
    main()
