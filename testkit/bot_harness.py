"""Driving a whole bot in a test: a recording plays into the pipeline as a microphone would, a sink listens."""

from __future__ import annotations

import asyncio
import time

import numpy as np
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    Frame,
    InputAudioRawFrame,
    InterruptionFrame,
    StartFrame,
    TTSAudioRawFrame,
    TTSStoppedFrame,
    TTSTextFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from voiceclone.audio import silence
from voiceclone.audio.pcm import to_int16

FRAME_S = 0.02


class Recordings(FrameProcessor):
    """Plays several 16 kHz recordings in real time, 20 ms at a time, `gap_s` of silence between them.

    `speech_starts_at`/`speech_ends_at` keep when each recording started and finished playing
    (`time.perf_counter()`), to tell an answer after the end from one that cut the speaker off.
    """

    def __init__(self, recordings: list[np.ndarray], lead_s: float = 0.5, gap_s: float = 5.0):
        super().__init__()
        self._recordings = [to_int16(r) for r in recordings]
        self._lead_s, self._gap_s = lead_s, gap_s
        self.speech_starts_at: list[float] = []
        self.speech_ends_at: list[float] = []
        self.done = asyncio.Event()
        self._playing = None

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)
        if isinstance(frame, StartFrame):
            self._playing = self.create_task(self._play())

    async def cleanup(self):
        """The microphone closes with the call (a transport's input does the same): a task left playing would
        keep the whole pipeline alive."""
        await super().cleanup()
        if self._playing is not None:
            await self.cancel_task(self._playing)
            self._playing = None

    async def _play(self):
        step = int(FRAME_S * 16000)
        silence = np.zeros(step, "<i2").tobytes()
        start = time.perf_counter()
        sent = 0

        async def send(chunk: bytes):
            nonlocal sent
            await self.push_frame(InputAudioRawFrame(chunk, 16000, 1))
            sent += 1
            await asyncio.sleep(max(0.0, start + sent * FRAME_S - time.perf_counter()))

        for _ in range(int(self._lead_s / FRAME_S)):
            await send(silence)
        for pcm in self._recordings:
            self.speech_starts_at.append(time.perf_counter())
            for i in range(0, len(pcm), step):
                await send(pcm[i : i + step].tobytes())
            self.speech_ends_at.append(time.perf_counter())
            for _ in range(int(self._gap_s / FRAME_S)):
                await send(silence)
        self.done.set()
        while True:  # the microphone stays open, silent
            await send(silence)


class RecordingSource(Recordings):
    """One 16 kHz recording played `times` times in real time, `tail_s` of silence after each."""

    def __init__(self, speech16k: np.ndarray, lead_s: float = 0.5, tail_s: float = 6.0, times: int = 1):
        super().__init__([speech16k] * times, lead_s=lead_s, gap_s=tail_s)

    @property
    def speech_ended_at(self) -> float | None:
        """When the first utterance finished playing."""
        return self.speech_ends_at[0] if self.speech_ends_at else None


class Listener(FrameProcessor):
    """Collects what the bot says: audio (with arrival times), spoken text, end of each answer.

    With `speaking_frames`, it also says when the bot starts and stops speaking, as an output transport does
    (`BotStartedSpeakingFrame`/`BotStoppedSpeakingFrame` both ways), so that Pipecat's latency observer can
    measure turns; `started_at` keeps when each answer's first audio arrived.
    """

    def __init__(self, speaking_frames: bool = False):
        super().__init__()
        self.audio: list[tuple[float, TTSAudioRawFrame]] = []
        self.text: list[str] = []
        self.answers = 0
        self.answered = asyncio.Event()
        self.started_at: list[float] = []
        self._speaking_frames = speaking_frames
        self._speaking = False

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, TTSAudioRawFrame):
            self.audio.append((time.perf_counter(), frame))
            if not self._speaking:
                self._speaking = True
                self.started_at.append(time.perf_counter())
                if self._speaking_frames:
                    await self.broadcast_frame(BotStartedSpeakingFrame)
        elif isinstance(frame, TTSTextFrame):
            self.text.append(frame.text)
        elif isinstance(frame, (TTSStoppedFrame, InterruptionFrame)) and self._speaking:
            self._speaking = False
            if self._speaking_frames:
                await self.broadcast_frame(BotStoppedSpeakingFrame)
        if isinstance(frame, TTSStoppedFrame) and self.audio:
            self.answers += 1
            self.answered.set()
        await self.push_frame(frame, direction)

    def spoken(self) -> str:
        return " ".join(t.strip() for t in self.text if t.strip())


async def run_bot(worker, until: asyncio.Event | None, timeout: float) -> bool:
    """Run a worker until `until` is set (True) or `timeout` passes (False); then end it.

    With `until` None: True when the worker ended by itself within `timeout`. Timeouts are generous limits for
    a slow, loaded machine, never a measure of speed: the result depends on events only.
    """
    from pipecat.workers.runner import WorkerRunner

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    task = asyncio.create_task(runner.run())
    ok = False
    try:
        waiters = [task] + ([asyncio.create_task(until.wait())] if until is not None else [])
        done, _ = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        ok = until.is_set() if until is not None else task in done
        if task in done:
            return ok
    finally:
        if not task.done():
            await worker.cancel(reason="test over")
            await asyncio.wait_for(task, timeout=20)
    return ok


class Until:
    """A script step: wait until a frame matching `predicate` has come out of the processor."""

    def __init__(self, predicate):
        self.predicate = predicate


class Do:
    """A script step: await `action()` (a coroutine function), e.g. to wait for something a fake engine does."""

    def __init__(self, action):
        self.action = action


async def run_script(
    processor, steps, pipeline_params=None, timeout: float = 120.0, observers=None, on_error=None
) -> list[Frame]:
    """Drive `processor` with frames, waiting on events between them (`Until`, `Do`), never on the clock.

    Args:
        processor: The processor (or pipeline) under test.
        steps: Frames to queue, `Until(predicate)` and `Do(coroutine function)` steps, in order.
        pipeline_params: The worker's `PipelineParams`.
        timeout: A limit for each wait, generous for a loaded machine.
        observers: Observers for the worker.
        on_error: Called with each `ErrorFrame` that reaches the worker.

    Returns:
        The frames that came out downstream, without the start and end frames.
    """
    from pipecat.frames.frames import EndFrame
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.pipeline.worker import PipelineParams, PipelineWorker
    from pipecat.workers.runner import WorkerRunner

    down: list[Frame] = []
    arrived = asyncio.Condition()

    class Sink(FrameProcessor):
        async def process_frame(self, frame, direction):
            await super().process_frame(frame, direction)
            if direction == FrameDirection.DOWNSTREAM:
                async with arrived:
                    down.append(frame)
                    arrived.notify_all()
            await self.push_frame(frame, direction)

    worker = PipelineWorker(
        Pipeline([processor, Sink()]),
        params=pipeline_params or PipelineParams(),
        cancel_on_idle_timeout=False,
        observers=observers or [],
        enable_rtvi=False,
    )
    started = asyncio.Event()

    @worker.event_handler("on_pipeline_started")
    async def _started(_worker, _frame):
        started.set()

    @worker.event_handler("on_pipeline_error")
    async def _error(_worker, frame):
        if on_error is not None:
            on_error(frame)

    async def drive():
        await asyncio.wait_for(started.wait(), timeout)
        mark = len(down)
        try:
            for step in steps:
                if isinstance(step, Until):
                    async with arrived:
                        await asyncio.wait_for(
                            arrived.wait_for(lambda step=step, mark=mark: any(step.predicate(f) for f in down[mark:])),
                            timeout,
                        )
                elif isinstance(step, Do):
                    await asyncio.wait_for(step.action(), timeout)
                else:
                    mark = len(down)
                    await worker.queue_frame(step)
        except BaseException:
            await worker.cancel(reason="a script step failed")  # the test fails instead of hanging
            raise
        await worker.queue_frame(EndFrame())

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await asyncio.gather(runner.run(), drive())
    return [f for f in down if not isinstance(f, (StartFrame, EndFrame))]


# ------------------------------------------------------------------------------------------ recordings
# Questions a caller asks, and sentences with a pause in the middle ("I would like to ... book a table for two"):
# spoken by Piper and by espeak-ng voices, made on the spot (no download).
QUESTIONS = (
    "Could you tell me what the weather will be like this weekend?",
    "What time does the store open tomorrow morning?",
    "How long does it take to drive from here to the airport?",
    "Can you recommend a good book for a long flight?",
    "Is there a pharmacy near the train station?",
    "What should I cook for dinner tonight?",
)
PAUSED = (
    ("I would like to", "book a table for two."),
    ("Could you tell me", "when the next train leaves?"),
    ("I was wondering whether", "you could help me with something."),
    ("My favourite colour is", "dark green."),
    ("Tomorrow I need to", "call my sister in the evening."),
)
ESPEAK_VOICES = ("en-us", "en-gb", "en-us+f3", "en-gb-x-rp", "en-us+m3")


def espeak_speech(text: str, voice: str = "en-us", words_per_minute: int = 165) -> np.ndarray:
    """`text` spoken by espeak-ng, as float32 at 16 kHz with the silence around it trimmed."""
    import os
    import subprocess
    import tempfile

    import soundfile as sf
    import soxr

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "say.wav")
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(words_per_minute), "-w", path, text], check=True)
        audio, rate = sf.read(path, dtype="float32")
    return trim_silence(soxr.resample(audio, rate, 16000).astype(np.float32))


def piper_speech(engine, text: str) -> np.ndarray:
    """`text` spoken by a Piper engine (`voiceclone.tts.PiperEngine`), as float32 at 16 kHz, trimmed."""
    import soxr

    return trim_silence(soxr.resample(engine.synthesize(text), engine.sample_rate, 16000).astype(np.float32))


def trim_silence(audio: np.ndarray) -> np.ndarray:
    """16 kHz `audio` without the near-silence before the first and after the last loud sample (keeps 30 ms)."""
    return silence.trim_silence(audio, 16000, start=True, end=True, start_keep_s=0.03, end_keep_s=0.03)


def with_pause(first: np.ndarray, second: np.ndarray, pause_s: float) -> np.ndarray:
    """Two parts of a sentence with `pause_s` of silence between them (16 kHz)."""
    return np.concatenate([first, np.zeros(int(pause_s * 16000), np.float32), second])


def paused_recordings(engine, count: int = 10, shortest_s: float = 0.6, longest_s: float = 0.9) -> list:
    """`count` sentences with a mid-sentence pause from `shortest_s` to `longest_s`, alternating Piper and espeak-ng.

    Returns:
        (text, 16 kHz float32 audio, pause in seconds) for each.
    """
    made = []
    for i in range(count):
        first, second = PAUSED[i % len(PAUSED)]
        pause = shortest_s + (longest_s - shortest_s) * i / max(1, count - 1)
        if i % 2 == 0:
            parts = piper_speech(engine, first), piper_speech(engine, second)
        else:
            voice = ESPEAK_VOICES[(i // 2) % len(ESPEAK_VOICES)]
            parts = espeak_speech(first, voice), espeak_speech(second, voice)
        made.append((f"{first} ... {second}", with_pause(*parts, pause), pause))
    return made


def question_recordings(engine, count: int = 6) -> list:
    """`count` questions, alternating Piper and espeak-ng voices: (text, 16 kHz float32 audio)."""
    made = []
    for i in range(count):
        text = QUESTIONS[i % len(QUESTIONS)]
        voice = ESPEAK_VOICES[(i // 2) % len(ESPEAK_VOICES)]
        audio = piper_speech(engine, text) if i % 2 == 0 else espeak_speech(text, voice)
        made.append((text, audio))
    return made
