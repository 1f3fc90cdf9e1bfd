"""The small web app for the WebRTC transport: our browser page at `/`, Pipecat's prebuilt client at `/client/`,
and the signalling endpoints both use.

It knows nothing of bots: it is given the coroutine that runs one call, a check of what a caller asks for (the
voice), and the page's own API routes. Every request it refuses gets a 4xx with a one-line JSON `detail`, and the
bot's log a line saying why; the request bodies are read and checked by `bodies`.
"""

# No `from __future__ import annotations` here: FastAPI reads the endpoint annotations at run time.
import asyncio
import contextlib
import io
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from loguru import logger
from pipecat.transports.smallwebrtc.connection import IceServer, SmallWebRTCConnection
from pipecat.transports.smallwebrtc.request_handler import (
    IceCandidate,
    SmallWebRTCPatchRequest,
    SmallWebRTCRequest,
    SmallWebRTCRequestHandler,
)
from starlette.exceptions import HTTPException as StarletteHTTPException

from voiceclone.collector import collect_ended_call
from voiceclone.pipecat.web import STATIC_DIR
from voiceclone.pipecat.web.bodies import MAX_START_BYTES, IceBody, OfferBody, StartBody, parse_json

RunCall = Callable[[SmallWebRTCConnection, dict], Awaitable[None]]  # a connection, the caller's checked options
CheckOptions = Callable[[dict], Awaitable[dict]]  # the offer's `request_data` -> options; raises HTTPException
SESSION_TTL_S = 120.0  # a `/start` session that never made a call is forgotten after this (the client offers at once)
MAX_PENDING_SESSIONS = 64  # `/start` sessions without a call kept at once: the oldest goes first
PRUNE_EVERY_S = 10.0  # how often forgotten sessions are pruned, requests or not
FORGET_AFTER_CANCEL_S = 5.0  # a call cancelled for never connecting that has still not ended frees its place now
CONNECT_TIMEOUT_S = 60.0  # a call whose peer never connects (an offer posted and abandoned) frees its place
COLLECT_AFTER_END_S = 1.0  # an ended call's objects are collected this long after it ends
DISCONNECT_TIMEOUT_S = 5.0  # closing a call's connection (aiortc) may hang on a peer that never connected


class _Calls:
    """The calls in progress, each its own task (not a request's background task, which uvicorn would wait for
    on shutdown), so that shutting down (Ctrl-C) ends every one of them at once; at most `limit` of them.
    """

    def __init__(self, run_call: RunCall, limit: int):
        self._run_call = run_call
        self._limit = limit
        self._tasks: dict[str, asyncio.Task] = {}  # pc_id -> the call's task
        self._admitting = 0  # offers being answered: counted so that two at once cannot both take the last place
        self.on_end: Callable[[str], None] = lambda _pc_id: None
        # Every call's task, forgotten ones too, and every ended call's collection, until done: the loop holds tasks
        # weakly (a forgotten call still closing its connection was destroyed pending, its clean-up never run).
        self._held: set[asyncio.Future] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def has(self, pc_id: str | None) -> bool:
        """Whether `pc_id` is a call in progress (an offer for it renegotiates instead of starting a call)."""
        return pc_id is not None and pc_id in self._tasks

    @contextlib.contextmanager
    def admit(self):
        """A place for one new call while its offer is answered; 503 when every place is taken."""
        if len(self._tasks) + self._admitting >= self._limit:
            raise HTTPException(
                status_code=503,
                detail=f"the bot is busy: {self._limit} call(s) in progress, the most it takes "
                "(transport.max_sessions); try again in a moment",
            )
        self._admitting += 1
        try:
            yield
        finally:
            self._admitting -= 1

    def start(self, connection: SmallWebRTCConnection, options: dict) -> None:
        """Run one call on a new connection until it ends, tracked; the connection is closed after it."""
        pc_id = connection.pc_id
        task = asyncio.create_task(self._run(connection, options))
        self._tasks[pc_id] = task
        self._hold(task)
        task.add_done_callback(lambda _task: self._ended(pc_id))
        forget = lambda: self._tasks.get(pc_id) is task and self._ended(pc_id)  # noqa: E731
        check = asyncio.get_running_loop().call_later(
            CONNECT_TIMEOUT_S, _cancel_unless_connected, task, connection, forget
        )
        # A pending timer holds the connection, and with it the call's pipeline, its resamplers and their FFmpeg
        # threads: an ended call lets go of it at once, not CONNECT_TIMEOUT_S later.
        task.add_done_callback(lambda _task: check.cancel())

    async def _run(self, connection: SmallWebRTCConnection, options: dict) -> None:
        try:
            await self._run_call(connection, options)
        finally:  # the call ended on its own (idle timeout, an error): hang the browser up too
            try:
                await asyncio.wait_for(connection.disconnect(), DISCONNECT_TIMEOUT_S)
            except TimeoutError:
                logger.warning(
                    f"{connection.pc_id}: the connection did not close in {DISCONNECT_TIMEOUT_S:.0f} s; left"
                )

    def _ended(self, pc_id: str) -> None:
        self._tasks.pop(pc_id, None)
        self.on_end(pc_id)
        # Once the connection's own callbacks have run: an ended call is a web of cycles (`voiceclone.collector`).
        asyncio.get_running_loop().call_later(COLLECT_AFTER_END_S, self._collect, pc_id)

    def _collect(self, pc_id: str) -> None:
        self._hold(asyncio.ensure_future(_collect_ended_call(pc_id)))

    def _hold(self, task: asyncio.Future) -> None:
        self._held.add(task)
        task.add_done_callback(self._held.discard)

    async def end_all(self, timeout_s: float = 0.5) -> None:
        """Cancel every call and wait (a bounded time) for them to finish.

        A cancelled pipeline takes 1.5 s or more to wind down on 2 cores; a call writes nothing that could be left
        half-written, so the wait is short (Ctrl-C within 2 s with calls): the connections are closed next anyway.
        """
        tasks = [task for task in self._tasks.values() if not task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout_s)
            if pending:
                logger.info(f"{len(pending)} call(s) still winding down at shutdown; closing their connections")


async def _collect_ended_call(pc_id: str) -> None:
    try:
        found, pass_s, trim_s = await asyncio.to_thread(collect_ended_call)
    except RuntimeError:  # the bot is shutting down (its thread pool is gone), and the process with it
        return
    logger.debug(
        f"{pc_id}: the ended call's objects collected ({found} unreachable; "
        f"{pass_s * 1000:.0f} ms, heap trimmed in {trim_s * 1000:.0f} ms)"
    )


def _cancel_unless_connected(task: asyncio.Task, connection: SmallWebRTCConnection, forget) -> None:
    """Cancel a call whose caller never connected; if it has still not ended `FORGET_AFTER_CANCEL_S` later (a
    pipeline stuck in its start-up), `forget` frees its place anyway."""
    if not task.done() and connection.pc.connectionState != "connected":
        logger.warning(f"{connection.pc_id}: the caller never connected; call ended")
        task.cancel()
        asyncio.get_running_loop().call_later(FORGET_AFTER_CANCEL_S, lambda: task.done() or forget())


class _Sessions:
    """The prebuilt client's `/start` sessions: what it posted, and the call made through it (if any)."""

    def __init__(self):
        self._sessions: dict[str, tuple[float, dict, str | None]] = {}  # id -> (created, body, pc_id), oldest first

    def __len__(self) -> int:
        return len(self._sessions)

    def new(self, body: dict) -> str:
        """A new session for `body`. Sessions that never made a call are forgotten after `SESSION_TTL_S`, and at most
        `MAX_PENDING_SESSIONS` of them are kept (the oldest goes first): memory stays bounded however many come."""
        self.prune()
        pending = [sid for sid, (_, _, pc_id) in self._sessions.items() if pc_id is None]
        for sid in pending[: max(0, len(pending) - MAX_PENDING_SESSIONS + 1)]:
            del self._sessions[sid]
        session_id = str(uuid.uuid4())
        self._sessions[session_id] = (time.monotonic(), body, None)
        return session_id

    def prune(self) -> None:
        """Forget the sessions that never made a call within `SESSION_TTL_S`."""
        now = time.monotonic()
        for sid, (created, _, pc_id) in list(self._sessions.items()):
            if pc_id is None and now - created > SESSION_TTL_S:
                del self._sessions[sid]

    async def prune_forever(self) -> None:
        """`prune` every `PRUNE_EVERY_S`, until cancelled (the app's lifespan runs it)."""
        while True:
            await asyncio.sleep(PRUNE_EVERY_S)
            self.prune()

    def body(self, session_id: str) -> dict:
        """What the session was started with; 404 for a session that does not exist (or has ended)."""
        if session_id not in self._sessions:
            raise HTTPException(status_code=404, detail=f"unknown session {session_id[:64]!r}")
        return self._sessions[session_id][1]

    def bind(self, session_id: str, pc_id: str, body: dict) -> None:
        """Remember the call made through the session, so that the session ends with it.

        The session may have been forgotten while its offer was answered (`new` drops the oldest pending ones when
        many come at once): the call exists all the same, so the session comes back, bound to it.
        """
        created = self._sessions.get(session_id, (time.monotonic(), body, None))[0]
        self._sessions[session_id] = (created, body, pc_id)

    def call_ended(self, pc_id: str) -> None:
        """Remove the sessions of a finished call."""
        for sid, (_, _, bound) in list(self._sessions.items()):
            if bound == pc_id:
                del self._sessions[sid]


def create_app(
    run_call: RunCall,
    *,
    check_options: CheckOptions | None = None,
    routes: Iterable[APIRouter] = (),
    max_sessions: int = 4,
    ice_servers: list[IceServer] | None = None,
) -> FastAPI:
    """FastAPI app: `/` our page, `/client/` Pipecat's; `/api/offer` (and the prebuilt client's `/start`,
    `/sessions/{id}/api/offer`) for WebRTC; `/api/config` for the page; `routes` added as they are.

    Args:
        run_call: Runs one call on a new connection until it ends, given the caller's checked options.
        check_options: Checks an offer's `request_data` (e.g. the voice asked for) before any connection is
            made, returning the options for `run_call`; None passes `{}`.
        routes: More API routes (the page's voices and enrollment).
        max_sessions: Calls at once; the next offer is refused with 503 and a message.
        ice_servers: STUN/TURN servers for the bot's side and the page's; None: host candidates only.

    Returns:
        The app; its lifespan ends every call and closes the connections on shutdown.
    """
    handler = SmallWebRTCRequestHandler(ice_servers=ice_servers or None)
    calls = _Calls(run_call, max_sessions)
    sessions = _Sessions()

    @asynccontextmanager
    async def lifespan(_app):
        pruning = asyncio.create_task(sessions.prune_forever())
        yield
        pruning.cancel()
        await calls.end_all()  # Ctrl-C: end every call, then close the connections
        await handler.close()

    app = FastAPI(lifespan=lifespan)
    app.middleware("http")(_no_tracebacks)
    app.add_exception_handler(StarletteHTTPException, _logged_refusal)
    app.add_middleware(_HeadAsGet)
    for router in routes:
        app.include_router(router)
    _add_offer_routes(app, handler, calls, sessions, check_options)
    app.state.sessions = sessions  # for tests and the benchmarks: how many are kept
    app.state.end_calls = calls.end_all  # the server's first Ctrl-C ends the calls at once (pipecat/webrtc.py)
    _add_page(app, calls, max_sessions, ice_servers or [])
    _add_prebuilt_client(app)
    return app


class _HeadAsGet:
    """HEAD answered as GET, without the body: FastAPI's GET routes refuse HEAD (405), so `curl -I` and uptime
    checks called the page broken. A route that has no GET still answers 405."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message):
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)


async def _logged_refusal(request: Request, exc: StarletteHTTPException):
    """A refused request is one line in the bot's log too, so whoever runs the bot sees why a page could not start
    a call or enroll a voice (a missing path is only a debug line: browsers ask for favicon.ico)."""
    log = logger.debug if exc.status_code in (404, 405) else logger.info
    detail = " ".join(str(exc.detail).split())[:200]
    log(f"{request.method} {request.url.path[:100]}: refused, {exc.status_code} {detail}")
    return await http_exception_handler(request, exc)


async def _no_tracebacks(request: Request, call_next):
    """A bug behind an endpoint is one log line and a 500 with a one-line JSON message, not a traceback page."""
    try:
        return await call_next(request)
    except Exception as exc:
        logger.error(f"{request.method} {request.url.path}: {type(exc).__name__}: {exc}")
        return JSONResponse({"detail": "the bot failed to answer this request (see its log)"}, status_code=500)


def _add_page(app: FastAPI, calls: _Calls, max_sessions: int, ice_servers: list[IceServer]) -> None:
    """Our own page at `/` (static files, no build step), and what it needs to know to connect."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    async def root():
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/api/config")
    async def config():
        servers = [_for_browser(server) for server in ice_servers]
        return {"ice_servers": servers, "max_sessions": max_sessions, "calls": len(calls)}


def _for_browser(server: IceServer) -> dict:
    """An ICE server as a browser's `RTCPeerConnection` takes it."""
    fields = {"urls": server.urls, "username": server.username, "credential": server.credential}
    return {k: v for k, v in fields.items() if v is not None}


def _add_prebuilt_client(app: FastAPI) -> None:
    """Pipecat's prebuilt client at `/client/` (it loads Daily's helper from a CDN: online use only)."""
    with contextlib.redirect_stdout(io.StringIO()):  # the package prints where it found its files
        from pipecat_ai_prebuilt.frontend import PipecatPrebuiltUI

    app.mount("/client", PipecatPrebuiltUI)


def _add_offer_routes(
    app: FastAPI,
    handler: SmallWebRTCRequestHandler,
    calls: _Calls,
    sessions: _Sessions,
    check_options: CheckOptions | None,
) -> None:
    """SmallWebRTC's signalling: offers and ICE candidates, directly or through a `/start` session."""
    calls.on_end = sessions.call_ended

    async def offer(body: OfferBody, fallback_options: dict | None = None) -> dict:
        request = _offer_request(body, fallback_options)
        if calls.has(request.pc_id):  # renegotiating a call in progress: no new place needed
            return await _answer(handler, request, lambda _connection: None)
        with calls.admit():
            options = await check_options(request.request_data or {}) if check_options else {}
            return await _answer(handler, request, lambda connection: calls.start(connection, options))

    @app.post("/api/offer")
    async def api_offer(request: Request):
        return await offer(await parse_json(request, OfferBody))

    @app.patch("/api/offer")
    async def api_ice(request: Request):
        await _add_candidates(handler, await parse_json(request, IceBody))
        return {"status": "success"}

    @app.post("/start")
    async def start(request: Request):
        try:
            body = await parse_json(request, StartBody, MAX_START_BYTES)
        except HTTPException as exc:  # the prebuilt client may post nothing (or anything): no options then
            if exc.status_code == 413:  # but a large body is not kept
                raise
            body = StartBody()
        return {"sessionId": sessions.new(body.body)}

    @app.api_route("/sessions/{session_id}/{path:path}", methods=["POST", "PATCH"])
    async def session_proxy(session_id: str, path: str, request: Request):
        session_body = sessions.body(session_id)
        if not path.endswith("api/offer"):
            raise HTTPException(status_code=404, detail=f"no endpoint {path[:64]!r} in a session")
        if request.method == "PATCH":
            await _add_candidates(handler, await parse_json(request, IceBody))
            return {"status": "success"}
        answer = await offer(await parse_json(request, OfferBody), session_body)
        sessions.bind(session_id, answer["pc_id"], session_body)
        return answer


def _offer_request(body: OfferBody, fallback_options: dict | None) -> SmallWebRTCRequest:
    """An offer as SmallWebRTC takes it, with the session's options when the offer brings none."""
    options = body.request_data if body.request_data is not None else (fallback_options or {})
    return SmallWebRTCRequest(
        sdp=body.sdp, type=body.type, pc_id=body.pc_id, restart_pc=body.restart_pc, request_data=options
    )


async def _answer(handler: SmallWebRTCRequestHandler, request: SmallWebRTCRequest, on_connection) -> dict:
    """The bot's answer to an offer; 400 when the offer's SDP cannot be used."""

    async def started(connection: SmallWebRTCConnection):
        on_connection(connection)

    try:
        return await handler.handle_web_request(request=request, webrtc_connection_callback=started)
    except HTTPException:
        raise
    except Exception as exc:  # aiortc's errors for an SDP it cannot parse or use
        raise HTTPException(status_code=400, detail=f"the offer cannot be used: {_offer_problem(exc)}") from None


async def _add_candidates(handler: SmallWebRTCRequestHandler, body: IceBody) -> None:
    """ICE candidates for a connection in progress; 404 for an unknown connection, 400 for one aiortc refuses."""
    candidates = [IceCandidate(**candidate.model_dump()) for candidate in body.candidates]
    try:
        await handler.handle_patch_request(SmallWebRTCPatchRequest(pc_id=body.pc_id, candidates=candidates))
    except HTTPException:
        raise
    except Exception as exc:  # aiortc: a candidate line it cannot parse
        raise HTTPException(status_code=400, detail=f"the ICE candidate cannot be used: {_first_line(exc)}") from None


def _offer_problem(exc: Exception) -> str:
    """What aiortc found wrong with an offer; its SDP parser fails on bare `assert`s, which say nothing."""
    if isinstance(exc, AssertionError) and not str(exc).strip():
        return "its session description (SDP) is not valid"
    return _first_line(exc)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]
