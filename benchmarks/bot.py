"""Voice-to-voice latency of the offline bot: from the end of the user's speech to the bot's first audio.

    python benchmarks/bot.py [--turns 5] [--stop-secs 0.8]

The offline pipeline of configs/offline.yaml (Silero VAD, Whisper tiny.en, echo, Piper, a real-size converter
with random weights) is fed a recorded question several times, in real time, as a microphone would; prints
the median and the spread of the latency, and what the VAD's `stop_secs` contributes by design.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import soxr
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from testkit.bot_harness import Listener, RecordingSource, run_bot  # noqa: E402
from testkit.converters import write_random_converter  # noqa: E402
from voiceclone.config import BotConfig  # noqa: E402
from voiceclone.enrollment import create, prepare  # noqa: E402
from voiceclone.openvoice import ToneColorConverter  # noqa: E402
from voiceclone.pipecat.bot import build_worker, prepare_voice  # noqa: E402
from voiceclone.tts import PiperEngine, PiperSettings  # noqa: E402
from voiceclone.voices import VoiceLibrary  # noqa: E402

QUESTION = "Could you tell me what the weather will be like this weekend?"


async def measure(args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ.setdefault("VOICECLONE_CACHE_DIR", str(tmp / "cache"))
        converter = ToneColorConverter.load(write_random_converter(tmp / "conv"), device="cpu", threads=2)
        engine = PiperEngine()
        library = VoiceLibrary(tmp / "voices")
        sample = tmp / "voice.wav"
        import soundfile as sf

        from testkit.speech import speech_sample

        sf.write(sample, speech_sample(12.0), 22050)
        create(library, "bench", prepare([sample], 22050), converter)
        cfg = BotConfig.model_validate(
            {
                "stt": {"engine": "whisper", "model": "tiny.en", "device": "cpu", "compute_type": args.compute_type},
                "llm": {"engine": "echo"},
                "tts": {"voice": "bench", "tau": 0.3},
                "vad": {"stop_secs": args.stop_secs},
                "pipeline": {"idle_timeout_s": 600, "turn_end": args.turn_end, "silence_s": args.silence_s},
            }
        )
        question = PiperEngine(PiperSettings(length_scale=1.1)).synthesize(QUESTION)
        question = soxr.resample(question, 22050, 16000).astype(np.float32)
        resources = prepare_voice(cfg, converter, engine, library)
        source = RecordingSource(question, tail_s=8.0, times=args.turns)
        listener = Listener()
        worker = build_worker(cfg, resources, source, listener, enable_rtvi=False)
        done = asyncio.Event()

        async def watch():
            while listener.answers < args.turns:
                await asyncio.sleep(0.1)
            done.set()

        watcher = asyncio.create_task(watch())
        await run_bot(worker, done, timeout=args.turns * 20 + 30)
        watcher.cancel()
    latencies = []
    for end in source.speech_ends_at:
        after = [t for t, _ in listener.audio if t > end]
        if after:
            latencies.append(after[0] - end)
    print(
        f"machine: {torch.get_num_threads()} threads, torch {torch.__version__}; offline bot: Silero VAD "
        f"(stop_secs {args.stop_secs}), turn end {args.turn_end}"
        f"{f' after {args.silence_s} s' if args.turn_end == 'silence' else ''}, Whisper tiny.en "
        f"({args.compute_type}), echo, Piper, real-size converter (random weights)"
    )
    if not latencies:
        print("no answer was heard")
        return
    print(
        f"voice-to-voice latency over {len(latencies)} turns: median {statistics.median(latencies) * 1000:.0f} ms "
        f"(min {min(latencies) * 1000:.0f}, max {max(latencies) * 1000:.0f})"
    )
    wait = args.stop_secs + (args.silence_s if args.turn_end == "silence" else 0.0)
    print(
        f"  of which waiting to be sure the user has finished (by design): {wait * 1000:.0f} ms"
        f"{' plus the smart-turn model' if args.turn_end == 'smart' else ''}; the rest is recognition, "
        f"synthesis and conversion up to the first chunk"
    )
    print("heard:", listener.spoken()[:200])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--stop-secs", type=float, default=0.2)
    parser.add_argument("--compute-type", default="default")
    parser.add_argument("--turn-end", choices=["smart", "silence"], default="silence")
    parser.add_argument("--silence-s", type=float, default=0.6)
    args = parser.parse_args()
    from loguru import logger

    logger.remove()
    asyncio.run(measure(args))


if __name__ == "__main__":
    main()
