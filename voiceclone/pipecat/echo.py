"""`EchoLLM`: stands where the LLM stands and answers with what the user said (no model, no key).

It also understands the voice commands an LLM with tools would act on ("switch to NAME", "talk like NAME",
"list voices"), so the echo bot can switch voices by asking too (`commands`, shared with the local LLM).
"""

from __future__ import annotations

from pipecat.frames.frames import Frame, LLMContextFrame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from voiceclone.pipecat.commands import answer_command, last_user_text, push_answer
from voiceclone.pipecat.tools import VoiceChoice


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
        said = last_user_text(frame.context.get_messages())
        if said and not await answer_command(self, self._voices, said):
            await push_answer(self, f"{self._prefix}{said}")
