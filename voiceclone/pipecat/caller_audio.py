"""Where the caller's audio stops travelling down the pipeline: after the user aggregator, its last reader.

Pipecat passes every frame a processor does not consume on to the next one, and nothing consumes the caller's
audio (`InputAudioRawFrame`, 50 a second per call, even in silence): past the user aggregator (the VAD and the turn
strategies, the last stage that reads it) it went through the LLM, the TTS, the output transport and the assistant
aggregator, each a queue, a task switch and a round of the observers, for nothing. On 2 cores an idle call cost
14-16 % of a core, and every call's share is taken from the answers being made.
"""

from __future__ import annotations

from pipecat.frames.frames import Frame, InputAudioRawFrame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor


class CallerAudioEnd(FrameProcessor):
    """Drops the caller's audio going downstream; passes every other frame, at once (no queue of its own)."""

    def __init__(self, **kwargs):
        super().__init__(enable_direct_mode=True, **kwargs)

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if direction == FrameDirection.DOWNSTREAM and isinstance(frame, InputAudioRawFrame):
            return
        await self.push_frame(frame, direction)
