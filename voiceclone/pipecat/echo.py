"""`EchoLLM`: stands where the LLM stands and answers with what the user said (no model, no key)."""

from __future__ import annotations

from pipecat.frames.frames import (
    Frame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor


class EchoLLM(FrameProcessor):
    """On each user turn (an `LLMContextFrame`), replies with the last user message, as an LLM would."""

    def __init__(self, prefix: str = "", **kwargs):
        super().__init__(**kwargs)
        self._prefix = prefix

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Answer context frames; pass everything else on."""
        await super().process_frame(frame, direction)
        if not isinstance(frame, LLMContextFrame):
            await self.push_frame(frame, direction)
            return
        said = _last_user_text(frame.context.get_messages())
        if not said:
            return
        await self.push_frame(LLMFullResponseStartFrame())
        await self.push_frame(LLMTextFrame(f"{self._prefix}{said}"))
        await self.push_frame(LLMFullResponseEndFrame())


def _last_user_text(messages: list) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content.strip()
            if isinstance(content, list):
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict)).strip()
    return ""
