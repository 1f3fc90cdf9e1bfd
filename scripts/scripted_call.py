"""A short scripted call with the offline bot: `python scripts/scripted_call.py [--voice NAME] [--out out]`.

Two questions, spoken by espeak-ng (a voice other than the bot's), are played in real time into the whole
offline bot (VAD, Whisper tiny.en, the built-in SmolLM2 model, the cloned voice of NAME, provenance mark) as a
microphone would. Writes the call (questions and answers on one mono timeline, each answer after the delay
the bot took) to OUT/call.wav, who said what (as the bot's STT heard it, and the bot's answer) to OUT/call.txt,
and prints each turn's voice-to-voice time: the end of the question's audio to the answer's first audio.
Run from the repository root (it uses `testkit`, which is not part of the package).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

QUESTIONS = ("What is the capital of France?", "Can you recommend a good book for a long flight?")
CALLER_VOICE = "en-gb"  # espeak-ng: clearly not the bot's voice
GAP_S = 10.0  # silence after each question: room for the answer before the next question
TIMEOUT_S = 240.0  # a generous limit for a slow machine, never a measure of speed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voice", default="demo", help="the enrolled voice the bot speaks in")
    parser.add_argument("--config", default="offline", help="the bot's config (a shipped name or a YAML file)")
    parser.add_argument("--out", type=Path, default=Path("out"), help="folder for call.wav and call.txt")
    args = parser.parse_args()
    try:
        turns, audio = asyncio.run(call(args.config, args.voice))
    except Exception as exc:  # one clear line, whatever failed
        sys.exit(f"scripted call failed: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}")
    write(args.out, turns, audio)
    for i, (heard, answer, v2v) in enumerate(turns, 1):
        print(f"turn {i}: voice-to-voice {v2v:.2f} s | heard: {heard!r} | answer: {answer!r}")
    print(f"call: {args.out / 'call.wav'}, transcript: {args.out / 'call.txt'}")
    print(f"talk live: voiceclone run-bot --config offline --voice {args.voice}, then open http://localhost:7860/")


async def call(config: str, voice: str):
    """Runs the call; returns [(heard, answer, voice-to-voice s)] and [(question 16 kHz, answer 16 kHz)]."""
    import soxr
    from loguru import logger

    logger.remove()  # quiet Pipecat's banner on import; the bot's own one-line reports come later
    from pipecat.frames.frames import TranscriptionFrame, TTSStoppedFrame, TTSTextFrame
    from pipecat.observers.base_observer import BaseObserver

    from testkit.bot_harness import Listener, Recordings, espeak_speech, run_bot
    from voiceclone.cli.bot_settings import bot_settings, log_to_terminal
    from voiceclone.cli.common import conversion_loader, library
    from voiceclone.cloning.speaker import load_watermarker
    from voiceclone.pipecat.bot import build_worker, prepare_voice
    from voiceclone.pipecat.services import preload
    from voiceclone.voices.lookup import check_consent

    cfg = bot_settings(Path(config), None, voice)
    lib = library(cfg, None)
    check_consent(cfg.consent, lib, voice)
    log_to_terminal(False)
    resources = prepare_voice(cfg, conversion_loader(cfg, None, spinner=False)(), None, lib, load_watermarker(True))
    preload(cfg)
    questions = [espeak_speech(q, CALLER_VOICE) for q in QUESTIONS]

    class Sink(Listener):  # also keeps when each answer stopped
        def __init__(self):
            super().__init__()
            self.stopped_at: list[float] = []

        async def process_frame(self, frame, direction):
            if isinstance(frame, TTSStoppedFrame) and self.audio:
                self.stopped_at.append(time.perf_counter())
            await super().process_frame(frame, direction)

    class Heard(BaseObserver):  # what the STT heard and what the bot said, with when
        def __init__(self):
            super().__init__()
            self.heard, self.said, self._seen = [], [], set()

        async def on_push_frame(self, data):
            frame = data.frame
            if frame.id in self._seen or not isinstance(frame, (TranscriptionFrame, TTSTextFrame)):
                return
            self._seen.add(frame.id)
            (self.heard if isinstance(frame, TranscriptionFrame) else self.said).append(
                (time.perf_counter(), frame.text)
            )

    source, sink, heard = Recordings(questions, gap_s=GAP_S), Sink(), Heard()
    worker = build_worker(cfg, resources, source, sink, enable_rtvi=False)
    worker.add_observer(heard)
    over = asyncio.Event()

    async def watch():  # over: every question played and answered
        while not (source.done.is_set() and sink.stopped_at and sink.stopped_at[-1] > source.speech_ends_at[-1]):
            await asyncio.sleep(0.2)
        over.set()

    watcher = asyncio.create_task(watch())
    finished = await run_bot(worker, over, timeout=TIMEOUT_S + GAP_S * len(questions))
    watcher.cancel()
    if not finished:
        raise RuntimeError(f"the bot did not answer both questions within {TIMEOUT_S:.0f} s")

    def turn_of(t: float, marks: list[float]) -> int:
        return sum(m <= t for m in marks) - 1

    turns, audio = [], []
    for i, question in enumerate(questions):
        chunks = [f for t, f in sink.audio if turn_of(t, source.speech_ends_at) == i]
        if not chunks:
            raise RuntimeError(f"the bot gave no answer to question {i + 1}")
        first = min(t for t, _ in sink.audio if turn_of(t, source.speech_ends_at) == i)
        pcm = np.concatenate([np.frombuffer(f.audio, "<i2").astype(np.float32) / 32768 for f in chunks])
        rate = chunks[0].sample_rate
        words = " ".join(x.strip() for t, x in heard.heard if turn_of(t, source.speech_starts_at) == i).strip()
        said = " ".join(x.strip() for t, x in heard.said if turn_of(t, source.speech_ends_at) == i).strip()
        turns.append((words, said, first - source.speech_ends_at[i]))
        audio.append((question, soxr.resample(pcm, rate, 16000).astype(np.float32)))
    return turns, audio


def write(out: Path, turns: list, audio: list) -> None:
    """call.wav: each question, the bot's delay in silence, its answer, a pause; call.txt: who said what."""
    import soundfile as sf

    out.mkdir(parents=True, exist_ok=True)
    pause = np.zeros(int(0.8 * 16000), np.float32)
    parts, lines = [pause], []
    for (heard, answer, v2v), (question, reply) in zip(turns, audio, strict=True):
        parts += [question, np.zeros(int(max(v2v, 0) * 16000), np.float32), reply, pause]
        lines += [f"caller (as heard): {heard}", f"bot ({v2v:.2f} s after): {answer}", ""]
    sf.write(out / "call.wav", np.concatenate(parts), 16000)
    (out / "call.txt").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
