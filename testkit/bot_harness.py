"""Driving a whole bot in a test: a recording plays into the pipeline as a microphone would, a sink listens."""

from __future__ import annotations

import asyncio
import time

import numpy as np
from pipecat.frames.frames import (
    Frame,
    InputAudioRawFrame,
    StartFrame,
    TTSAudioRawFrame,
    TTSStoppedFrame,
    TTSTextFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

FRAME_S = 0.02


class RecordingSource(FrameProcessor):
    """Plays 16 kHz mono speech in real time, 20 ms at a time, with silence before and after."""

    def __init__(self, speech16k: np.ndarray, lead_s: float = 0.5, tail_s: float = 6.0, times: int = 1):
        super().__init__()
        pcm = (np.clip(speech16k, -1, 1) * 32767).astype("<i2")
        silence = np.zeros(int(tail_s * 16000), "<i2")
        self._pcm = np.concatenate([np.zeros(int(lead_s * 16000), "<i2")] + [pcm, silence] * times)
        lead, gap = int(lead_s * 16000), len(pcm) + len(silence)
        self._speech_ends = [lead + k * gap + len(pcm) for k in range(times)]  # sample index of each utterance's end
        self.speech_ends_at: list[float] = []  # when each utterance finished playing

    @property
    def speech_ended_at(self) -> float | None:
        """When the first utterance finished playing."""
        return self.speech_ends_at[0] if self.speech_ends_at else None

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)
        if isinstance(frame, StartFrame):
            self.create_task(self._play())

    async def _play(self):
        step = int(FRAME_S * 16000)
        start = time.perf_counter()
        for n, i in enumerate(range(0, len(self._pcm), step)):
            await self.push_frame(InputAudioRawFrame(self._pcm[i : i + step].tobytes(), 16000, 1))
            if (
                len(self.speech_ends_at) < len(self._speech_ends)
                and i + step >= self._speech_ends[len(self.speech_ends_at)]
            ):
                self.speech_ends_at.append(time.perf_counter())
            delay = start + (n + 1) * FRAME_S - time.perf_counter()
            await asyncio.sleep(max(0.0, delay))


class Listener(FrameProcessor):
    """Collects what the bot says: audio (with arrival times), spoken text, end of each answer."""

    def __init__(self):
        super().__init__()
        self.audio: list[tuple[float, TTSAudioRawFrame]] = []
        self.text: list[str] = []
        self.answers = 0
        self.answered = asyncio.Event()

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, TTSAudioRawFrame):
            self.audio.append((time.perf_counter(), frame))
        elif isinstance(frame, TTSTextFrame):
            self.text.append(frame.text)
        elif isinstance(frame, TTSStoppedFrame) and self.audio:
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
