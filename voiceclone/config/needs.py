"""What a bot config needs from the machine before anything loads: its keys, and its local model files.

Light on purpose (no Pipecat, no torch): `run-bot` and `config check` refuse a config that cannot run in well under
a second, before the layers that do the work are imported.
"""

from __future__ import annotations

import os

from voiceclone.config.sections import BotConfig, DeepgramSTTConfig, LocalLLMConfig, OpenAILLMConfig
from voiceclone.errors import UserError
from voiceclone.llm.models import resolve_model


def required_keys(cfg: BotConfig) -> list[str]:
    """Environment variables the config's services need (every engine of a failover list counts)."""
    keys = []
    if any(isinstance(stt, DeepgramSTTConfig) for stt in cfg.stt_engines):
        keys.append("DEEPGRAM_API_KEY")
    if any(isinstance(llm, OpenAILLMConfig) for llm in cfg.llm_engines) or cfg.tts.engine == "openai":
        keys.append("OPENAI_API_KEY")
    if cfg.transport.type == "daily" and not (cfg.transport.room_url or os.environ.get("DAILY_ROOM_URL")):
        keys.append("DAILY_API_KEY")
    return keys


def check_keys(cfg: BotConfig) -> None:
    """Every key the bot needs is set, and every local LLM's model file is there, before anything connects."""
    missing = [k for k in required_keys(cfg) if not os.environ.get(k)]
    if missing:
        raise UserError(
            f"missing {', '.join(missing)}: set {'it' if len(missing) == 1 else 'them'} in the environment or .env"
        )
    for llm in cfg.llm_engines:
        if isinstance(llm, LocalLLMConfig):
            resolve_model(llm.model, download=False)  # a hub file not yet downloaded is fetched by `preload`
