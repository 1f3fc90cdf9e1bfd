"""Running a bot on its transport: a Daily room, a browser tab (WebRTC), or the local sound card."""

from __future__ import annotations

import asyncio
import os
import time

from loguru import logger

from ..config import BotConfig, DailyTransportConfig, LocalTransportConfig, WebRTCTransportConfig
from ..audio import quiet_stderr
from ..errors import UserError
from .bot import VoiceResources, build_worker, speak_opening_line

def _report_error(frame) -> None:
    logger.error(f"{getattr(frame, 'processor', None) or 'pipeline'}: {frame.error}")


async def run(cfg: BotConfig, resources: VoiceResources, announce) -> None:
    """Run the bot until the call ends, the idle timeout passes, or Ctrl-C."""
    transport = cfg.transport
    if isinstance(transport, DailyTransportConfig):
        await _run_daily(cfg, transport, resources, announce)
    elif isinstance(transport, LocalTransportConfig):
        await _run_local(cfg, transport, resources, announce)
    else:
        await _run_webrtc(cfg, transport, resources, announce)


async def _run_worker(worker, handle_sigint: bool) -> None:
    from pipecat.workers.runner import WorkerRunner

    runner = WorkerRunner(handle_sigint=handle_sigint)
    await runner.add_workers(worker)
    await runner.run()


# ---------------------------------------------------------------------------------------------------- daily
async def _run_daily(cfg: BotConfig, t: DailyTransportConfig, resources: VoiceResources, announce) -> None:
    import aiohttp
    from pipecat.transports.daily.transport import DailyParams, DailyTransport

    room_url = t.room_url or os.environ.get("DAILY_ROOM_URL")
    token = None
    api_key = os.environ.get("DAILY_API_KEY")
    if api_key:
        from pipecat.transports.daily.utils import DailyRESTHelper, DailyRoomParams, DailyRoomProperties

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
            raise UserError(f"cannot set up a Daily room ({str(exc).splitlines()[0][:160]}); check DAILY_API_KEY") from None
    if not room_url:
        raise UserError("no Daily room: set transport.room_url, DAILY_ROOM_URL, or DAILY_API_KEY to create one")

    transport = DailyTransport(
        room_url, token, t.bot_name, DailyParams(audio_in_enabled=True, audio_out_enabled=True)
    )
    worker = build_worker(cfg, resources, transport.input(), transport.output(), on_error=_report_error)

    @transport.event_handler("on_first_participant_joined")
    async def _joined(_transport, participant):
        await speak_opening_line(worker, cfg)

    @transport.event_handler("on_participant_left")
    async def _left(_transport, participant, reason):
        await worker.cancel(reason="the caller left")

    announce(f"Join the call: {room_url}")
    await _run_worker(worker, handle_sigint=True)


# ---------------------------------------------------------------------------------------------------- local
async def _run_local(cfg: BotConfig, t: LocalTransportConfig, resources: VoiceResources, announce) -> None:
    try:
        from pipecat.transports.local.audio import LocalAudioTransport, LocalAudioTransportParams
    except ImportError:
        raise UserError(
            "the local transport needs the `local` extra: pip install -e '.[local]' (it builds pyaudio, which needs "
            "the portaudio19-dev system package)"
        ) from None
    with quiet_stderr():  # ALSA and JACK print pages of probing noise on the terminal
        _check_sound_devices(t.input_device, t.output_device)
        transport = LocalAudioTransport(
            LocalAudioTransportParams(
                audio_in_enabled=True,
                audio_out_enabled=True,
                input_device_index=t.input_device,
                output_device_index=t.output_device,
            )
        )
    worker = build_worker(cfg, resources, transport.input(), transport.output(), on_error=_report_error)

    @worker.event_handler("on_pipeline_started")
    async def _started(_worker, _frame):
        await speak_opening_line(worker, cfg)

    announce("Talking on this computer's microphone and speakers: speak now, Ctrl-C to stop.")
    await _run_worker(worker, handle_sigint=True)


def _check_sound_devices(input_index: int | None, output_index: int | None) -> None:
    """A microphone and a speaker exist (PyAudio otherwise fails later, inside the running pipeline)."""
    import pyaudio

    pa = pyaudio.PyAudio()
    try:
        for kind, index, default in (
            ("microphone", input_index, pa.get_default_input_device_info),
            ("speaker", output_index, pa.get_default_output_device_info),
        ):
            try:
                info = pa.get_device_info_by_index(index) if index is not None else default()
            except (OSError, IOError, ValueError):
                where = f"device {index}" if index is not None else "a default one"
                raise UserError(f"no {kind} found ({where}); plug one in or set transport.input_device/output_device") from None
            channels = info["maxInputChannels"] if kind == "microphone" else info["maxOutputChannels"]
            if channels < 1:
                raise UserError(f"device {info['index']} ({info['name']}) is not a {kind}")
    finally:
        pa.terminate()


# --------------------------------------------------------------------------------------------------- webrtc
async def _run_webrtc(cfg: BotConfig, t: WebRTCTransportConfig, resources: VoiceResources, announce) -> None:
    import uvicorn

    from .webapp import create_app

    _check_port_free(t.host, t.port)
    app = create_app(cfg, resources)
    server = uvicorn.Server(uvicorn.Config(app, host=t.host, port=t.port, log_level="warning", lifespan="on"))
    shown_host = "localhost" if t.host in ("127.0.0.1", "0.0.0.0", "::") else t.host
    announce(f"Open http://{shown_host}:{t.port}/ in a browser, allow the microphone, and talk (Ctrl-C to stop).")
    try:
        await server.serve()
    except SystemExit:  # uvicorn exits when the port is taken
        raise UserError(f"cannot listen on {t.host}:{t.port} (is another program using the port?)") from None
    if not server.started:
        raise UserError(f"cannot listen on {t.host}:{t.port} (is another program using the port?)")


def _check_port_free(host: str, port: int) -> None:
    """Fail before announcing a URL that would not work."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise UserError(f"transport.host {host!r} is not an address of this machine") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise UserError(f"cannot listen on {host}:{port} ({exc.strerror}): choose another transport.port") from None


async def run_webrtc_session(cfg: BotConfig, resources: VoiceResources, connection) -> None:
    """One browser session: a pipeline on the connection, until the tab closes."""
    from pipecat.transports.base_transport import TransportParams
    from pipecat.transports.smallwebrtc.transport import SmallWebRTCTransport

    transport = SmallWebRTCTransport(
        connection, TransportParams(audio_in_enabled=True, audio_out_enabled=True)
    )
    worker = build_worker(cfg, resources, transport.input(), transport.output(), on_error=_report_error)

    @transport.event_handler("on_client_connected")
    async def _connected(_transport, _client):
        await speak_opening_line(worker, cfg)

    @transport.event_handler("on_client_disconnected")
    async def _disconnected(_transport, _client):
        await worker.cancel(reason="the browser disconnected")

    await _run_worker(worker, handle_sigint=False)
