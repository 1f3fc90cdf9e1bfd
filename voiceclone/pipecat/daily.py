"""The Daily transport: the bot joins a Daily room (or creates one with DAILY_API_KEY) and prints its URL."""

from __future__ import annotations

import os
import time

import aiohttp
from pipecat.transports.daily.transport import DailyParams, DailyTransport
from pipecat.transports.daily.utils import DailyRESTHelper, DailyRoomParams, DailyRoomProperties

from voiceclone.config.sections import BotConfig, DailyTransportConfig
from voiceclone.errors import UserError
from voiceclone.pipecat.bot import VoiceResources, build_worker, report_error, run_worker, speak_opening_line


async def run_daily(cfg: BotConfig, t: DailyTransportConfig, resources: VoiceResources, announce) -> None:
    """Join (or create) the Daily room, print its URL, and run the bot until the caller leaves or Ctrl-C."""
    room_url = t.room_url or os.environ.get("DAILY_ROOM_URL")
    token = None
    api_key = os.environ.get("DAILY_API_KEY")
    if api_key:
        api_url = os.environ.get("DAILY_API_URL", "https://api.daily.co/v1")
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:
                helper = DailyRESTHelper(daily_api_key=api_key, daily_api_url=api_url, aiohttp_session=session)
                if not room_url:
                    expiry = time.time() + t.room_expiry_minutes * 60
                    room = await helper.create_room(DailyRoomParams(properties=DailyRoomProperties(exp=expiry)))
                    room_url = room.url
                token = await helper.get_token(room_url, expiry_time=t.room_expiry_minutes * 60, owner=True)
        except Exception as exc:  # aiohttp, timeouts, Daily's API errors: one line that says what to check
            raise UserError(
                f"cannot set up a Daily room ({str(exc).splitlines()[0][:160]}); check DAILY_API_KEY"
            ) from None
    if not room_url:
        raise UserError("no Daily room: set transport.room_url, DAILY_ROOM_URL, or DAILY_API_KEY to create one")

    transport = DailyTransport(room_url, token, t.bot_name, DailyParams(audio_in_enabled=True, audio_out_enabled=True))
    worker = build_worker(cfg, resources, transport.input(), transport.output(), on_error=report_error)

    @transport.event_handler("on_first_participant_joined")
    async def _joined(_transport, participant):
        await speak_opening_line(worker, cfg)

    @transport.event_handler("on_participant_left")
    async def _left(_transport, participant, reason):
        await worker.cancel(reason="the caller left")

    announce(f"Join the call: {room_url}")
    await run_worker(worker, handle_signals=True)
