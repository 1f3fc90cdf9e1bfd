"""Base TTS engines behind one small interface (`TTSEngine`): Piper (default, local) and OpenAI-compatible HTTP."""

from __future__ import annotations

from voiceclone.tts.base import EngineSettings, TTSEngine, TTSError
from voiceclone.tts.openai import OpenAIEngine, OpenAISettings
from voiceclone.tts.piper import PiperEngine, PiperSettings

ENGINES = ("piper", "openai")

__all__ = [
    "ENGINES",
    "EngineSettings",
    "OpenAIEngine",
    "OpenAISettings",
    "PiperEngine",
    "PiperSettings",
    "TTSEngine",
    "TTSError",
    "make_engine",
]


def make_engine(name: str, piper: PiperSettings | None = None, openai: OpenAISettings | None = None) -> TTSEngine:
    """The base voice engine called `name` ("piper" or "openai"), with its settings (the others are ignored)."""
    if name == "piper":
        return PiperEngine(piper)
    if name == "openai":
        return OpenAIEngine(openai)
    raise TTSError(f"unknown engine {name!r}: choose one of {', '.join(ENGINES)}")
