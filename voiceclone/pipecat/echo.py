"""`EchoLLM`: stands where the LLM stands and answers with what the user said (no model, no key).

It also understands the voice commands an LLM with tools would act on ("switch to NAME", "talk like NAME",
"list voices"), so the offline bot can switch voices by asking too.
"""

from __future__ import annotations

from pipecat.frames.frames import (
    Frame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from .tools import VoiceChoice, parse_command

# An utterance this short that names no voice is still taken as a (failed) command; a longer one is just echoed,
# so that "I want to switch to a new phone plan" is not answered with a list of voices.
COMMAND_WORDS = 6


class EchoLLM(FrameProcessor):
    """On each user turn (an `LLMContextFrame`), replies with the last user message, as an LLM would."""

    def __init__(self, prefix: str = "", voices: VoiceChoice | None = None, **kwargs):
        """Args: prefix: said before the echo; voices: the call's voices, for voice commands (None: no commands)."""
        super().__init__(**kwargs)
        self._prefix = prefix
        self._voices = voices

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Answer context frames; pass everything else on."""
        await super().process_frame(frame, direction)
        if not isinstance(frame, LLMContextFrame):
            await self.push_frame(frame, direction)
            return
        said = _last_user_text(frame.context.get_messages())
        if not said:
            return
        switch, reply = self._command(said)
        if switch is not None:  # before the answer, so that the answer is already in the new voice
            await self.push_frame(switch)
        await self.push_frame(LLMFullResponseStartFrame())
        await self.push_frame(LLMTextFrame(reply if reply is not None else f"{self._prefix}{said}"))
        await self.push_frame(LLMFullResponseEndFrame())

    def _command(self, said: str) -> tuple[Frame | None, str | None]:
        """For a voice command: the switch frame (or None) and the answer; (None, None) if `said` is not one."""
        command = parse_command(said) if self._voices is not None else None
        if command is None:
            return None, None
        voices = self._voices
        kind, spoken = command
        if kind == "list":
            return None, voices.listing()
        name = voices.find(spoken)
        if name is None:
            return None, (voices.unknown(spoken) if len(said.split()) <= COMMAND_WORDS else None)
        return voices.switch_frame(name), voices.switched(name)


def _last_user_text(messages: list) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content.strip()
            if isinstance(content, list):
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict)).strip()
    return ""
