"""Enrollment speed: 60 s of speech (a 44.1 kHz stereo WAV) into a voice, real-size converter loaded.

    python benchmarks/enroll.py [--seconds 60] [--runs 5] [--threads 2]

Prints medians: the whole enroll (read, resample, VAD, quality, embedding, atomic save) and its parts.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from testkit.converters import write_random_converter  # noqa: E402
from testkit.speech import speech_sample  # noqa: E402
from voiceclone.cloning.enrollment import create, prepare  # noqa: E402
from voiceclone.cloning.openvoice_conversion import OpenVoiceConversion, embed  # noqa: E402
from voiceclone.openvoice.converter import ToneColorConverter  # noqa: E402
from voiceclone.voices.store import VoiceLibrary  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        converter = ToneColorConverter.load(write_random_converter(tmp / "conv"), device="cpu", threads=args.threads)
        _ = converter.checkpoint_sha256  # hashed once per loaded converter, as a long-running process would
        speech = speech_sample(args.seconds, 22050)
        sample = tmp / "sample.wav"
        sf.write(sample, soxr.resample(np.stack([speech, speech * 0.8], axis=1), 22050, 44100), 44100)
        prepare([sample], 22050)  # warm-up: VAD session, first-call allocations
        totals, prep, emb = [], [], []
        for run in range(args.runs):
            library = VoiceLibrary(tmp / f"voices{run}")
            t0 = time.perf_counter()
            prepared = prepare([sample], converter.sampling_rate)
            t1 = time.perf_counter()
            create(library, "bench", prepared, [OpenVoiceConversion(converter)])
            t2 = time.perf_counter()
            embed(converter, prepared.speech)
            t3 = time.perf_counter()
            totals.append(t2 - t0)
            prep.append(t1 - t0)
            emb.append(t3 - t2)
    med = statistics.median
    print(
        f"machine: {torch.get_num_threads()} threads, torch {torch.__version__}; "
        "real V2 size converter (random weights)"
    )
    print(
        f"recording: {args.seconds:.0f} s, 44.1 kHz stereo WAV, {prepared.quality.speech_s:.1f} s of speech, "
        f"{args.runs} runs"
    )
    print(f"enroll total:            median {med(totals) * 1000:7.1f} ms")
    print(f"  read+resample+VAD+QA:  median {med(prep) * 1000:7.1f} ms")
    print(f"  embedding alone:       median {med(emb) * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
