"""Running a bot on the transport its config names: a Daily room, a browser tab (WebRTC), or the sound card."""

from __future__ import annotations

from collections.abc import Callable

from voiceclone.config.sections import BotConfig, DailyTransportConfig, LocalTransportConfig
from voiceclone.pipecat.bot import VoiceResources
from voiceclone.pipecat.daily import run_daily
from voiceclone.pipecat.local import run_local
from voiceclone.pipecat.webrtc import run_webrtc


async def run(cfg: BotConfig, resources: VoiceResources, announce: Callable[[str], None]) -> None:
    """Run the bot until the call ends, the idle timeout passes, or Ctrl-C.

    Args:
        cfg: The bot's config.
        resources: The loaded voice, shared by every call.
        announce: Shows the user one line: where to join or what to open.
    """
    transport = cfg.transport
    if isinstance(transport, DailyTransportConfig):
        await run_daily(cfg, transport, resources, announce)
    elif isinstance(transport, LocalTransportConfig):
        await run_local(cfg, transport, resources, announce)
    else:
        await run_webrtc(cfg, transport, resources, announce)
