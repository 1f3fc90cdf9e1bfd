"""The WebRTC transport: a browser tab talks to the bot's own small web app (one pipeline per tab).

Every call shares the loaded models (`VoiceResources`, the Whisper model); each has its own pipeline and its own
voice, which the caller picks with the offer and switches in the call with an RTVI client message.
"""

from __future__ import annotations

import asyncio

import uvicorn
from aiortc.jitterbuffer import JitterBuffer
from pipecat.frames.frames import TTSUpdateSettingsFrame
from pipecat.transports.base_transport import TransportParams
from pipecat.transports.smallwebrtc.connection import IceServer
from pipecat.transports.smallwebrtc.transport import SmallWebRTCTransport

from voiceclone.config.needs import check_listening
from voiceclone.config.sections import BotConfig, IceServerConfig, WebRTCTransportConfig
from voiceclone.errors import UserError
from voiceclone.pipecat.bot import VoiceResources, build_worker, report_error, run_worker, speak_opening_line
from voiceclone.pipecat.stopping import leave_now
from voiceclone.pipecat.tts import ClonedVoiceTTSService
from voiceclone.pipecat.web.api import PageAPI
from voiceclone.pipecat.web.app import create_app
from voiceclone.voices.lookup import allowed_voice

SWITCH_VOICE = "switch-voice"  # RTVI client message: {"t": "switch-voice", "d": {"voice": NAME}}


async def run_webrtc(cfg: BotConfig, t: WebRTCTransportConfig, resources: VoiceResources, announce) -> None:
    """Serve the page and take calls until Ctrl-C (which ends every call at once).

    Args:
        cfg: The bot's config.
        t: Its WebRTC section (address, session limit, ICE servers).
        resources: The loaded voice and models, shared by every call.
        announce: Shows the user one line: the URL to open.
    """
    check_listening(t.host, t.port)  # again: it may have been taken while the models loaded
    page = PageAPI(resources.library, resources.converter, resources.voice_name, resources.consent)
    app = create_app(
        lambda connection, options: run_webrtc_session(cfg, resources, connection, voice=options.get("voice")),
        check_options=page.call_options,
        routes=[page.router()],
        max_sessions=t.max_sessions,
        ice_servers=ice_servers(t.ice_servers),
    )
    shown_host = "localhost" if t.host in ("127.0.0.1", "0.0.0.0", "::") else t.host
    server = _Server(
        uvicorn.Config(app, host=t.host, port=t.port, log_level="warning", lifespan="on", timeout_graceful_shutdown=1),
        on_listening=lambda: announce(
            f"Open http://{shown_host}:{t.port}/ in a browser, allow the microphone, and talk (Ctrl-C to stop)."
        ),
    )
    try:
        await server.serve()
    except SystemExit:  # uvicorn exits when the port is taken
        raise UserError(f"cannot listen on {t.host}:{t.port} (is another program using the port?)") from None
    if not server.started:
        raise UserError(f"cannot listen on {t.host}:{t.port} (is another program using the port?)")


class _Server(uvicorn.Server):
    """uvicorn's server, but the first Ctrl-C ends every call at once (uvicorn would first wait up to its graceful
    timeout for the page's open requests, and only then run the app's shutdown), and a second leaves at once
    instead of waiting on a hung shutdown."""

    def handle_exit(self, sig, frame):
        if self.should_exit:
            leave_now()
        # uvicorn's own handler is not used. A second Ctrl-C handled inside it (between two of its bytecodes) made
        # it set `force_exit`, which skips the app's shutdown, and it re-raises the signal after the stop, which
        # then raised KeyboardInterrupt through the app's unfinished lifespan: a traceback on a double Ctrl-C.
        self.should_exit = True
        end_calls = getattr(getattr(self.config.app, "state", None), "end_calls", None)
        loop = self._loop
        if end_calls is not None and loop is not None:
            # uvicorn's handler runs between two bytecodes of the loop's thread: hand the work to the loop.
            loop.call_soon_threadsafe(lambda: loop.create_task(end_calls()))

    def __init__(self, config: uvicorn.Config, on_listening=lambda: None):
        super().__init__(config)
        self._on_listening = on_listening

    async def serve(self, sockets=None):
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets)
        if self.started:  # the URL is shown once the port answers, so a browser opened at once connects
            self._on_listening()

    _loop: asyncio.AbstractEventLoop | None = None


def ice_servers(configured: list[str | IceServerConfig]) -> list:
    """The configured STUN/TURN servers as aiortc takes them (none: host candidates only, fine on one machine)."""
    return [
        IceServer(urls=s) if isinstance(s, str) else IceServer(s.urls, username=s.username, credential=s.credential)
        for s in configured
    ]


async def run_webrtc_session(cfg: BotConfig, resources: VoiceResources, connection, voice: str | None = None) -> None:
    """One browser session: a pipeline on the connection, until the tab closes.

    Args:
        cfg: The bot's config.
        resources: The loaded voice and models, shared by every call.
        connection: The caller's `SmallWebRTCConnection`.
        voice: The enrolled voice the caller asked for (already checked); None for the bot's own.
    """
    # The call is built in the caller's voice (read off the event loop), so the greeting is already in it.
    start = (
        (voice, await asyncio.to_thread(resources.resolve, voice)) if voice and voice != resources.voice_name else None
    )
    if isinstance(cfg.transport, WebRTCTransportConfig):
        shorten_receive_buffer(connection, cfg.transport.receive_buffer_frames)
    transport = SmallWebRTCTransport(connection, TransportParams(audio_in_enabled=True, audio_out_enabled=True))
    worker = build_worker(cfg, resources, transport.input(), transport.output(), on_error=report_error, voice=start)
    _take_voice_switches(worker, resources)

    @transport.event_handler("on_client_connected")
    async def _connected(_transport, _client):
        await speak_opening_line(worker, cfg)

    @transport.event_handler("on_client_disconnected")
    async def _disconnected(_transport, _client):
        await worker.cancel(reason="the browser disconnected")

    await run_worker(worker, handle_signals=False)  # the server stops every call


def shorten_receive_buffer(connection, frames: int) -> None:
    """Hold `frames` packets of the caller's audio before decoding one, instead of aiortc's fixed 4.

    aiortc's audio receiver decodes a 20 ms packet only once 4 later ones have come: 80 ms between the caller's
    last word and the VAD hearing it, on every turn. aiortc has no setting for it, so the receiver's buffer is
    replaced before media flows (aiortc 1.x: `RTCRtpReceiver.__jitter_buffer`, read only as packets arrive).
    A lost packet stalls the buffer the same with any depth; a deeper one only waits for reordered packets.
    """
    for transceiver in connection.pc.getTransceivers():
        if transceiver.kind == "audio":
            transceiver.receiver._RTCRtpReceiver__jitter_buffer = JitterBuffer(capacity=16, prefetch=frames)


def voice_switch(name: str):
    """The frame that makes this call's TTS speak as `name` from its next sentence."""
    return TTSUpdateSettingsFrame(delta=ClonedVoiceTTSService.Settings(voice=name))


def _take_voice_switches(worker, resources: VoiceResources) -> None:
    """The page's `switch-voice` RTVI client message -> a voice switch in this call, answered either way."""

    @worker.rtvi.event_handler("on_client_message")
    async def _message(rtvi, message):
        if message.type != SWITCH_VOICE:
            await rtvi.send_error_response(message, f"unknown client message {message.type!r}")
            return
        name = message.data.get("voice") if isinstance(message.data, dict) else None
        try:
            await asyncio.to_thread(allowed_voice, resources.library, name, resources.consent, untrusted=True)
        except UserError as exc:
            await rtvi.send_error_response(message, str(exc))
            return
        await worker.queue_frames([voice_switch(name)])
        await rtvi.send_server_response(message, {"voice": name})
