"""Switching voices by asking: `list_voices` and `switch_voice(name)` for an LLM with tools, and the same
commands ("switch to NAME", "talk like NAME", "list voices") understood by the echo stand-in.

A switch is a `TTSUpdateSettingsFrame` pushed downstream from the LLM: it reaches the cloned-voice service before
any text that follows it, so the voice changes from the next sentence. An unknown name is answered with a sentence
that lists the voices there are.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable

from loguru import logger
from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema
from pipecat.frames.frames import FunctionCallResultProperties, TTSSpeakFrame, TTSUpdateSettingsFrame

from voiceclone.pipecat.tts import ClonedVoiceTTSService

# What people say (and Whisper writes) to ask for another voice; NAME is what follows.
_SWITCH = re.compile(
    r"\b(?:switch(?:\s+(?:the\s+)?voice)?\s+to|change(?:\s+(?:the\s+|your\s+)?voice)?\s+to|"
    r"talk(?:ing)?\s+like|speak(?:ing)?\s+(?:like|as)|sound\s+like|use\s+the\s+voice\s+of)\s+(?P<name>.+)",
    re.IGNORECASE,
)
_USE_VOICE = re.compile(r"\buse\s+(?P<name>[\w'-]+?)(?:'s)?\s+voice\b", re.IGNORECASE)
_LIST = re.compile(
    r"\b(?:list(?:\s+(?:the|your|all))?\s+voices|(?:which|what)\s+voices|voices\s+(?:do\s+you|can\s+you))\b",
    re.IGNORECASE,
)
_FILLER = re.compile(r"^(?:the\s+voice\s+of\s+|the\s+|a\s+)|(?:'s)?(?:\s+voice)?(?:\s+please)?$", re.IGNORECASE)


def parse_command(said: str) -> tuple[str, str | None] | None:
    """A voice command in what the user said: ("list", None), ("switch", spoken name), or None.

    Args:
        said: A transcript, e.g. "Could you talk like Alice, please?".

    Returns:
        The command, with the name as said (not yet matched to a voice).
    """
    if _LIST.search(said):
        return ("list", None)
    match = _USE_VOICE.search(said) or _SWITCH.search(said)
    if match is None:
        return None
    name = _FILLER.sub("", match.group("name").strip(" .,!?;:\"'")).strip(" .,!?;:\"'")
    name = re.sub(r"[\s,]+please$", "", name, flags=re.IGNORECASE).strip(" .,!?")
    return ("switch", name) if name else None


class VoiceChoice:
    """The enrolled voices one call can switch between, the current one, and what the bot says about them."""

    def __init__(self, library, speaking: Callable[[], str]):
        """Args: library: the `VoiceLibrary`; speaking: the voice the call speaks in now (its TTS service's).

        Asked each time rather than kept here: the voice also changes from the page (an RTVI message), and a
        switch may be refused by the consent policy; the service is the one place that knows which voice it really
        speaks in, so "list voices" and "talk like X" never contradict what the caller hears.
        """
        self.library = library
        self._speaking = speaking

    @property
    def current(self) -> str:
        """The voice the call speaks in now."""
        return self._speaking()

    def names(self) -> list[str]:
        """The enrolled voices, sorted."""
        return self.library.names()

    def find(self, spoken: str) -> str | None:
        """The enrolled voice a spoken name means (case, spaces, dashes and small mishearings forgiven)."""
        names = self.names()
        key = _plain(spoken)
        by_key = {_plain(n): n for n in names}
        if key in by_key:
            return by_key[key]
        close = difflib.get_close_matches(key, list(by_key), n=1, cutoff=0.75)
        return by_key[close[0]] if close else None

    def listing(self) -> str:
        """A spoken sentence listing the voices."""
        others = [n for n in self.names() if n != self.current]
        if not others:
            return f"I only have one voice: {self.current}."
        return f"I'm talking like {self.current}. I can also talk like {_and(others)}."

    def unknown(self, spoken: str) -> str:
        """What the bot says when asked for a voice it does not have."""
        return f"I don't have a voice called {spoken}. I can talk like {_and(self.names())}."

    def switched(self, name: str) -> str:
        """What the bot says, in the new voice, after switching."""
        return f"Okay, now I'm talking like {name}."

    def switch_frame(self, name: str):
        """The frame that makes the cloned-voice service speak as `name` from its next sentence."""
        logger.info(f"switching to voice {name!r} (asked by the caller)")
        return TTSUpdateSettingsFrame(delta=ClonedVoiceTTSService.Settings(voice=name))


def voice_tools(choice: VoiceChoice):
    """The `list_voices` and `switch_voice` tools, with their handlers, for an `LLMContext`.

    The handlers travel with the schemas (Pipecat registers a schema's handler on every LLM service that sees
    it advertised), so a backup LLM taking over in a failover has them too.

    Args:
        choice: The call's voices.

    Returns:
        A `ToolsSchema`.
    """
    return ToolsSchema(
        standard_tools=[
            FunctionSchema(
                name="list_voices",
                description="List the voices you can talk in (the enrolled voices) and the one you use now.",
                properties={},
                required=[],
                handler=lambda params: _list_voices(choice, params),
            ),
            FunctionSchema(
                name="switch_voice",
                description=(
                    "Talk in another enrolled voice from your next sentence on, when the caller asks you to talk "
                    "like someone, to switch or change the voice. An unknown name is answered for you."
                ),
                properties={"name": {"type": "string", "description": "The voice's name, as the caller said it."}},
                required=["name"],
                handler=lambda params: _switch_voice(choice, params),
            ),
        ]
    )


async def _list_voices(choice: VoiceChoice, params) -> None:
    await params.result_callback({"voices": choice.names(), "current": choice.current})


async def _switch_voice(choice: VoiceChoice, params) -> None:
    """Switch and let the LLM confirm (in the new voice); an unknown name is answered here, with the list."""
    spoken = str(params.arguments.get("name", "")).strip()
    name = choice.find(spoken) if spoken else None
    if name is None:
        await params.llm.push_frame(TTSSpeakFrame(choice.unknown(spoken or "that")))
        result = {"switched": False, "error": f"no voice named {spoken!r}", "voices": choice.names()}
        await params.result_callback(result, properties=FunctionCallResultProperties(run_llm=False))
        return
    await params.llm.push_frame(choice.switch_frame(name))
    await params.result_callback({"switched": True, "voice": name})


def _plain(name: str) -> str:
    return re.sub(r"[\s_\-.'’]+", "", name.lower())


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
