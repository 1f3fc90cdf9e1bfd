"""The spoken voice commands ("talk like NAME", "list voices") answered without a model: by the echo stand-in and
by the local LLM (a small model cannot call tools), in the same words."""

from __future__ import annotations

from pipecat.frames.frames import Frame, LLMFullResponseEndFrame, LLMFullResponseStartFrame, LLMTextFrame
from pipecat.processors.frame_processor import FrameProcessor

from voiceclone.pipecat.tools import VoiceChoice, parse_command

# An utterance this short that names no voice is still taken as a (failed) command; a longer one is not a command,
# so that "I want to switch to a new phone plan" is not answered with a list of voices.
COMMAND_WORDS = 6


def command_reply(voices: VoiceChoice | None, said: str) -> tuple[Frame | None, str | None]:
    """For a voice command: the switch frame (or None) and the answer; (None, None) if `said` is not one.

    Args:
        voices: The call's voices (None: no commands).
        said: What the user said last.
    """
    command = parse_command(said) if voices is not None else None
    if command is None:
        return None, None
    kind, spoken = command
    if kind == "list":
        return None, voices.listing()
    name = voices.find(spoken)
    if name is None:
        return None, (voices.unknown(spoken) if len(said.split()) <= COMMAND_WORDS else None)
    return voices.switch_frame(name), voices.switched(name)


async def answer_command(processor: FrameProcessor, voices: VoiceChoice | None, said: str) -> bool:
    """Answer `said` from `processor` if it is a voice command, as an LLM's whole response; False if it is not one."""
    switch, reply = command_reply(voices, said)
    if reply is None:
        return False
    await push_answer(processor, reply, switch)
    return True


async def push_answer(processor: FrameProcessor, text: str, switch: Frame | None = None) -> None:
    """`text` as one whole LLM response; a voice switch first, so that the answer is already in the new voice."""
    if switch is not None:
        await processor.push_frame(switch)
    await processor.push_frame(LLMFullResponseStartFrame())
    await processor.push_frame(LLMTextFrame(text))
    await processor.push_frame(LLMFullResponseEndFrame())


def last_user_text(messages: list) -> str:
    """The text of the last user message of an LLM context ("" if none)."""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content.strip()
            if isinstance(content, list):
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict)).strip()
    return ""
