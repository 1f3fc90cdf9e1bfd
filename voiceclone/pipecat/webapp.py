"""The small web app for the WebRTC transport: Pipecat's prebuilt browser client and the offer endpoints."""

# No `from __future__ import annotations` here: FastAPI reads the endpoint annotations at run time.
import asyncio
import contextlib
import io
import uuid
from contextlib import asynccontextmanager

from fastapi import BackgroundTasks, FastAPI, HTTPException, Request
from fastapi.responses import RedirectResponse
from pipecat.transports.smallwebrtc.connection import SmallWebRTCConnection
from pipecat.transports.smallwebrtc.request_handler import (
    IceCandidate,
    SmallWebRTCPatchRequest,
    SmallWebRTCRequest,
    SmallWebRTCRequestHandler,
)

from ..config import BotConfig
from .bot import VoiceResources


def create_app(cfg: BotConfig, resources: VoiceResources):
    """FastAPI app: `/` -> the client; `/start`, `/sessions/{id}/api/offer` and `/api/offer` for WebRTC."""
    with contextlib.redirect_stdout(io.StringIO()):  # the package prints where it found its files
        from pipecat_ai_prebuilt.frontend import PipecatPrebuiltUI

    from .serve import run_webrtc_session

    handler = SmallWebRTCRequestHandler()
    sessions: dict[str, dict] = {}
    bots: set[asyncio.Task] = set()

    @asynccontextmanager
    async def lifespan(_app):
        yield
        for task in list(bots):  # Ctrl-C: end every call, then close the connections
            task.cancel()
        await asyncio.gather(*bots, return_exceptions=True)
        await handler.close()

    app = FastAPI(lifespan=lifespan)
    app.mount("/client", PipecatPrebuiltUI)

    @app.get("/", include_in_schema=False)
    async def root():
        return RedirectResponse(url="/client/")

    async def start_bot(connection: SmallWebRTCConnection) -> None:
        task = asyncio.current_task()
        if task is not None:
            bots.add(task)
        try:
            await run_webrtc_session(cfg, resources, connection)
        finally:
            if task is not None:
                bots.discard(task)

    async def offer(request: SmallWebRTCRequest, background_tasks: BackgroundTasks):
        async def on_connection(connection: SmallWebRTCConnection):
            background_tasks.add_task(start_bot, connection)

        return await handler.handle_web_request(request=request, webrtc_connection_callback=on_connection)

    @app.post("/api/offer")
    async def api_offer(request: SmallWebRTCRequest, background_tasks: BackgroundTasks):
        return await offer(request, background_tasks)

    @app.patch("/api/offer")
    async def api_ice(request: SmallWebRTCPatchRequest):
        await handler.handle_patch_request(request)
        return {"status": "success"}

    @app.post("/start")
    async def start(request: Request):
        try:
            body = await request.json()
        except ValueError:
            body = {}
        session_id = str(uuid.uuid4())
        sessions[session_id] = body.get("body", {}) if isinstance(body, dict) else {}
        return {"sessionId": session_id}

    @app.api_route("/sessions/{session_id}/{path:path}", methods=["POST", "PATCH"])
    async def session_proxy(session_id: str, path: str, request: Request, background_tasks: BackgroundTasks):
        if session_id not in sessions:
            raise HTTPException(status_code=404, detail="unknown session")
        if not path.endswith("api/offer"):
            raise HTTPException(status_code=404, detail="not found")
        data = await request.json()
        if request.method == "POST":
            webrtc_request = SmallWebRTCRequest(
                sdp=data["sdp"],
                type=data["type"],
                pc_id=data.get("pc_id"),
                restart_pc=data.get("restart_pc"),
                request_data=data.get("request_data") or data.get("requestData") or sessions[session_id],
            )
            return await offer(webrtc_request, background_tasks)
        patch = SmallWebRTCPatchRequest(
            pc_id=data["pc_id"],
            candidates=[IceCandidate(**c) for c in data.get("candidates", [])],
        )
        await handler.handle_patch_request(patch)
        return {"status": "success"}

    return app
