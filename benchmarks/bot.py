"""The offline bot, measured: voice-to-voice latency, false cut-offs, and how soon an interrupted bot answers again.

    python benchmarks/bot.py [--turn-end sentence|smart|silence] [--rounds 2] [--skip-pauses] [--skip-interruption]

The pipeline of configs/offline.yaml (Silero VAD, Whisper tiny.en, the local LLM or `--llm echo`, Piper, a
real-size converter with random weights) hears recordings in real time, as from a microphone:

1. recorded questions (Piper and espeak-ng voices): voice-to-voice latency, from the end of the question to the
   bot's first audio, median and spread, and where it went (Pipecat's latency observer, grouped as the bot logs it);
2. sentences with a pause of 0.6 to 0.9 s in the middle ("I would like to ... book a table for two"), other
   sentences than the ones the turn rules were tuned on: how many got one answer, after the end (a false cut-off is
   an answer that starts before the end);
3. an answer interrupted while its next part is being synthesised: how soon the next answer starts, with the
   interrupted answer's remaining work abandoned (now) or finished step by step (as before).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from testkit.bot_harness import (  # noqa: E402
    Listener,
    Recordings,
    espeak_speech,
    piper_speech,
    question_recordings,
    run_bot,
    with_pause,
)
from testkit.converters import write_random_converter  # noqa: E402
from voiceclone.cloning.enrollment import create, prepare  # noqa: E402
from voiceclone.cloning.openvoice_conversion import OpenVoiceConversion  # noqa: E402
from voiceclone.config.sections import BotConfig  # noqa: E402
from voiceclone.openvoice.converter import ToneColorConverter  # noqa: E402
from voiceclone.pipecat.bot import build_worker, prepare_voice  # noqa: E402
from voiceclone.pipecat.latency import latency_report  # noqa: E402
from voiceclone.tts import PiperEngine, PiperSettings  # noqa: E402
from voiceclone.voices.store import VoiceLibrary  # noqa: E402

# Not the sentences `testkit.bot_harness.PAUSED` (which the turn rules were looked at with): held out.
HELD_OUT_PAUSED = (
    ("Can you remind me to", "water the plants tomorrow?"),
    ("The thing I really want is", "a quiet weekend at home."),
    ("I think we should go to", "the beach on Saturday."),
    ("What do you think about", "the new library downtown?"),
    ("Please tell me how", "to get to the museum."),
    ("My brother and I are planning", "a trip to Spain in June."),
    ("I forgot where I put", "my keys this morning."),
    ("Do you know if", "the bank is open on Sunday?"),
    ("We could meet at", "the cafe around noon."),
    ("I have been trying to", "learn the piano for years."),
)
ESPEAK = ("en-us", "en-gb", "en-us+f3", "en-gb-x-rp", "en-us+m3")


def bot_config(args) -> BotConfig:
    """configs/offline.yaml's pipeline, with the turn strategy under test."""
    return BotConfig.model_validate(
        {
            "stt": {
                "engine": "whisper",
                "model": "tiny.en",
                "device": "cpu",
                "compute_type": args.compute_type,
                "early": not args.no_early_stt,
            },
            "llm": {"engine": args.llm},
            "tts": {"voice": "bench", "tau": 0.3},
            "vad": {"stop_secs": args.stop_secs},
            "pipeline": {
                "idle_timeout_s": 600,
                "turn_end": args.turn_end,
                "silence_s": args.silence_s,
                "speculate": not args.no_speculate,
                "read_ahead": not args.no_read_ahead,
            },
        }
    )


async def hear(cfg, resources, recordings: list[np.ndarray], gap_s: float):
    """One call hearing the recordings in turn; returns the source, the listener and the latency report."""
    source, listener = Recordings(recordings, gap_s=gap_s), Listener(speaking_frames=True)
    worker = build_worker(cfg, resources, source, listener, enable_rtvi=False)
    report = latency_report(worker)
    done = asyncio.Event()

    async def until_played():
        await source.done.wait()
        await asyncio.sleep(1.0)  # the last answer's first audio comes well within the gap; this ends the call
        done.set()

    waiter = asyncio.create_task(until_played())
    await run_bot(worker, done, timeout=len(recordings) * (gap_s + 15) + 60)
    waiter.cancel()
    return source, listener, report


def answers_between(listener, start: float, end: float) -> list[float]:
    return [t for t in listener.started_at if start <= t < end]


async def latency_section(cfg, resources, engine, args) -> None:
    questions = [audio for _, audio in question_recordings(engine, count=6)] * args.rounds
    from loguru import logger

    early: list[str] = []  # what the STT says of its early transcripts (debug lines)
    sink = logger.add(lambda m: early.append(m.record["message"]), level="DEBUG", filter=_early_lines)
    try:
        source, listener, report = await hear(cfg, resources, questions, gap_s=6.0)
    finally:
        logger.remove(sink)
    ends, starts = source.speech_ends_at, source.speech_starts_at[1:] + [float("inf")]
    latencies = []
    for end, following in zip(ends, starts, strict=True):
        after = answers_between(listener, end, following)
        if after:
            latencies.append(after[0] - end)
    if not latencies:
        print("latency: no answer was heard")
        return
    ms = sorted(v * 1000 for v in latencies)
    print(
        f"voice-to-voice latency over {len(ms)} recorded questions (of {len(questions)}): "
        f"median {statistics.median(ms):.0f} ms (min {ms[0]:.0f}, max {ms[-1]:.0f})"
    )
    if report is not None and report.turns:
        parts = {k: statistics.median(t.parts[k] for t in report.turns) * 1000 for k in report.turns[0].parts}
        print(
            "  where it went (medians, Pipecat's latency observer): "
            + ", ".join(f"{k.replace('_', ' ')} {v:.0f} ms" for k, v in parts.items())
        )
        services = sorted({name for t in report.turns for name in t.ttfb})
        ttfb = {n: statistics.median(t.ttfb[n] for t in report.turns if n in t.ttfb) * 1000 for n in services}
        print("  time to first byte (medians): " + ", ".join(f"{n.split('#')[0]} {v:.0f} ms" for n, v in ttfb.items()))
    ready = [float(line.split("ready ")[1].split(" ms")[0]) for line in early if "ready" in line]
    if cfg.stt.early:
        print(
            f"  early speech to text: {len(ready)} of {len(questions)} turns took the transcript started at the pause"
            + (f" (ready {statistics.median(ready):.0f} ms before the VAD's stop, median)" if ready else "")
            + f"; {sum('dropped' in line for line in early)} redone for sound after the pause"
        )
    if cfg.pipeline.speculate and cfg.pipeline.turn_end == "sentence":
        ahead = sum("ahead of the turn's end" in line for line in early)
        withdrawn = sum("withdrawn" in line for line in early)
        print(f"  answered ahead of the turn's end: {ahead - withdrawn} of {len(questions)} ({withdrawn} withdrawn)")
    print("  heard:", listener.spoken()[:160])


def _early_lines(record) -> bool:
    """The STT's lines on its early transcripts, and the turn strategy's on the answers started ahead."""
    message = record["message"]
    return record["name"].startswith("voiceclone") and (
        message.startswith("early transcript") or "ahead of the turn's end" in message or "withdrawn" in message
    )


async def pauses_section(cfg, resources, engine) -> None:
    recordings, pauses = [], []
    for i, (first, second) in enumerate(HELD_OUT_PAUSED):
        pause = 0.6 + 0.3 * i / (len(HELD_OUT_PAUSED) - 1)
        if i % 2 == 0:
            parts = piper_speech(engine, first), piper_speech(engine, second)
        else:
            voice = ESPEAK[(i // 2) % len(ESPEAK)]
            parts = espeak_speech(first, voice), espeak_speech(second, voice)
        recordings.append(with_pause(*parts, pause))
        pauses.append(pause)
    source, listener, _ = await hear(cfg, resources, recordings, gap_s=6.0)
    good, cut, late = 0, [], []
    following = source.speech_starts_at[1:] + [float("inf")]
    for i, (start, end, nxt) in enumerate(zip(source.speech_starts_at, source.speech_ends_at, following, strict=True)):
        early, after = answers_between(listener, start, end), answers_between(listener, end, nxt)
        if not early and len(after) == 1:
            good += 1
            late.append(after[0] - end)
        elif early:
            cut.append(f"{' ... '.join(HELD_OUT_PAUSED[i])} ({pauses[i]:.2f} s)")
    print(
        f"mid-sentence pauses of 0.6 to 0.9 s: {good} of {len(recordings)} got one answer, after the end"
        + (f" (answered {statistics.median(late) * 1000:.0f} ms after the end, median)" if late else "")
    )
    for sentence in cut:
        print(f"  cut off: {sentence}")


async def interruption_section(converter, engine, library, args) -> None:
    """How soon the next answer's first audio comes after an interruption landing in a synthesis."""
    from pipecat.frames.frames import InterruptionFrame, TTSAudioRawFrame, TTSSpeakFrame

    from testkit.bot_harness import Do, Until, run_script
    from voiceclone.cloning.cloned import ClonedVoice
    from voiceclone.pipecat.tts import ClonedVoiceTTSService

    class AsBefore(ClonedVoiceTTSService):
        """The previous behaviour: a unit's synthesis and its first conversion step were one step."""

        def _synthesise(self, voice, unit, tau, generation, emit, keep=False, lead_in=False):
            chunks = voice.convert(voice.base_audio(unit, lead_in), voice.engine.sample_rate, tau, self._chunk_frames)
            first = True
            while first or self._generation == generation:
                chunk, first = next(chunks, None), False
                if chunk is None:
                    return []
                emit(chunk)
            return None

    class Signalling:
        def __init__(self, engine):
            self.engine, self.sample_rate, self.identity = engine, engine.sample_rate, engine.identity
            self.started = asyncio.Event()
            self.loop = None

        def synthesize(self, text):
            self.loop.call_soon_threadsafe(self.started.set)
            return self.engine.synthesize(text)

    conversion = converter
    target = conversion.voice_data(library, library.get("bench"))
    source = conversion.base_data(engine)
    long_answer = " ".join(["This is a long answer, and it keeps going for a good while, clause after clause."] * 3)
    results = {}
    for label, cls in (("abandoned (now)", ClonedVoiceTTSService), ("finished step by step (before)", AsBefore)):
        waits = []
        for _ in range(args.interruptions):
            signalling = Signalling(engine)
            signalling.loop = asyncio.get_running_loop()
            voice = ClonedVoice(signalling, conversion, target, source, tau=0.3)
            service = cls(voice=voice, voice_name="bench", resolve_voice=lambda name: target)
            marks: dict[str, float] = {}

            async def in_synthesis(signalling=signalling, marks=marks):
                await signalling.started.wait()
                signalling.started.clear()
                await signalling.started.wait()  # the second unit's synthesis: the first unit has been heard
                marks["interrupted"] = time.perf_counter()

            def new_audio(frame, marks=marks):
                if isinstance(frame, TTSAudioRawFrame) and "interrupted" in marks and "first" not in marks:
                    marks["first"] = time.perf_counter()
                return "first" in marks

            await run_script(
                service,
                [
                    TTSSpeakFrame(long_answer),
                    Do(in_synthesis),
                    InterruptionFrame(),
                    Until(lambda f: isinstance(f, InterruptionFrame)),
                    TTSSpeakFrame("Yes?"),
                    Until(new_audio),
                ],
            )
            waits.append(marks["first"] - marks["interrupted"])
        results[label] = statistics.median(waits)
    now, before = results["abandoned (now)"], results["finished step by step (before)"]
    print(
        f"after an interruption during a synthesis, the next answer's first audio: {now * 1000:.0f} ms "
        f"(before: {before * 1000:.0f} ms; {(before - now) * 1000:.0f} ms sooner; medians of {args.interruptions})"
    )


async def measure(args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ.setdefault("VOICECLONE_CACHE_DIR", str(tmp / "cache"))
        converter = OpenVoiceConversion(
            ToneColorConverter.load(write_random_converter(tmp / "conv"), device="cpu", threads=2)
        )
        engine = PiperEngine()
        library = VoiceLibrary(tmp / "voices")
        sample = tmp / "voice.wav"
        import soundfile as sf

        from testkit.speech import speech_sample

        sf.write(sample, speech_sample(12.0), 22050)
        create(library, "bench", prepare([sample], 22050), [converter])
        cfg = bot_config(args)
        resources = prepare_voice(cfg, converter, engine, library)
        load = os.getloadavg()[0]
        print(
            f"machine: {os.cpu_count()} cores, load {load:.2f}, torch {torch.__version__} ({torch.get_num_threads()}"
            f" threads); offline bot: Silero VAD (stop_secs {args.stop_secs}), turn end {args.turn_end}, Whisper "
            f"tiny.en ({args.compute_type}), {args.llm} LLM, Piper, real-size converter (random weights)"
        )
        questions_engine = PiperEngine(PiperSettings(length_scale=1.1))
        if not args.skip_latency:
            await latency_section(cfg, resources, questions_engine, args)
        if not args.skip_pauses:
            await pauses_section(cfg, resources, questions_engine)
        if not args.skip_interruption:
            await interruption_section(converter, engine, library, args)
        print(f"load at the end: {os.getloadavg()[0]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="times the six recorded questions are asked")
    parser.add_argument("--llm", choices=["local", "echo"], default="local", help="the built-in local LLM, or the echo")
    parser.add_argument("--stop-secs", type=float, default=0.2)
    parser.add_argument("--compute-type", default="default")
    parser.add_argument("--no-early-stt", action="store_true", help="transcribe from the VAD's stop, not the pause")
    parser.add_argument("--turn-end", choices=["sentence", "smart", "silence"], default="sentence")
    parser.add_argument("--no-speculate", action="store_true", help="start each answer at the turn's end, not ahead")
    parser.add_argument(
        "--no-read-ahead", action="store_true", help="the LLM reads the question only at the turn's end"
    )
    parser.add_argument("--log", help="write the bot's debug log to this file")
    parser.add_argument("--silence-s", type=float, default=0.6)
    parser.add_argument("--interruptions", type=int, default=5)
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-pauses", action="store_true")
    parser.add_argument("--skip-interruption", action="store_true")
    args = parser.parse_args()
    from loguru import logger

    logger.remove()
    if args.log:
        logger.add(args.log, level="DEBUG")
    asyncio.run(measure(args))


if __name__ == "__main__":
    main()
