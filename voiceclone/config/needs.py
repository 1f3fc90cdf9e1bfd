"""What a bot config needs from the machine before anything loads: its keys, its local model files, its transport.

Light on purpose (no Pipecat, no torch): `run-bot` and `config check` refuse a config that cannot run in well under
a second, before the layers that do the work are imported.
"""

from __future__ import annotations

import importlib.util
import os
import socket

from voiceclone.config.sections import BotConfig, DeepgramSTTConfig, LocalLLMConfig, OpenAILLMConfig
from voiceclone.errors import UserError
from voiceclone.llm.models import resolve_model

LOCAL_EXTRA = (
    "the local transport needs the `local` extra: pip install -e '.[local]' (it builds pyaudio, which needs the "
    "portaudio19-dev system package)"
)


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


def check_transport(cfg: BotConfig, listen: bool) -> None:
    """The transport can start here: the local one's extra is installed, WebRTC's host is an address of this
    machine and, when `listen` (a bot about to start, not `config check`), its port is free."""
    t = cfg.transport
    if t.type == "local" and importlib.util.find_spec("pyaudio") is None:
        raise UserError(LOCAL_EXTRA)
    if t.type == "webrtc":
        check_listening(t.host, t.port if listen else None)


def check_listening(host: str, port: int | None) -> None:
    """`host` is an address of this machine and `port` (unless None) is free on it: fail before announcing a URL
    that would not work, and before the models load."""
    try:
        infos = socket.getaddrinfo(host, port or 0, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise UserError(f"transport.host {host!r} is not an address of this machine") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if port is None:
                raise UserError(f"transport.host {host!r} is not an address of this machine ({exc.strerror})") from None
            raise UserError(f"cannot listen on {host}:{port} ({exc.strerror}): choose another transport.port") from None
