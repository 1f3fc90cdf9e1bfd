"""Local stand-ins, on 127.0.0.1, for the cloud services a bot talks to.

- `FakeDeepgram`: the `/v1/listen` websocket. It counts the audio it is sent and, when the client asks it to
  finalize (Pipecat does when the user stops speaking), answers with a final `Results` message.
- `FakeOpenAIChat`: `/v1/chat/completions` streaming server-sent events, and recording what it was asked.
Both run in the test's event loop and can misbehave on request (bad key, dropped connection, errors, silence).
"""

from __future__ import annotations

import asyncio
import json
from http import HTTPStatus

from aiohttp import web
from websockets.asyncio.server import serve

DEEPGRAM_KEY = "dg-test-good"
OPENAI_KEY = "sk-test-good"


def results(transcript: str, final: bool = True) -> str:
    """A Deepgram `Results` message."""
    return json.dumps(
        {
            "type": "Results",
            "channel_index": [0, 1],
            "duration": 1.0,
            "start": 0.0,
            "is_final": final,
            "speech_final": final,
            "from_finalize": final,
            "channel": {"alternatives": [{"transcript": transcript, "confidence": 0.99, "words": []}]},
            "metadata": {
                "request_id": "fake",
                "model_info": {"name": "fake", "version": "1", "arch": "x"},
                "model_uuid": "fake",
            },
        }
    )


class FakeDeepgram:
    """`mode`: "ok", or "drop" (close the socket once audio flows)."""

    def __init__(self, transcript: str, mode: str = "ok"):
        self.transcript = transcript
        self.mode = mode
        self.connections = 0
        self.audio_bytes = 0
        self.finalized = 0
        self.rejected = 0
        self.killed = False
        self._server = None

    async def _check(self, connection, request):
        if request.headers.get("Authorization") != f"Token {DEEPGRAM_KEY}":
            self.rejected += 1
            return connection.respond(HTTPStatus.UNAUTHORIZED, "Invalid credentials.\n")
        return None

    async def _handle(self, ws):
        self.connections += 1
        async for message in ws:
            if isinstance(message, bytes):
                self.audio_bytes += len(message)
                if self.mode == "drop" and self.audio_bytes > 16000:
                    await ws.close(code=1011, reason="fake failure")
                    return
                continue
            kind = json.loads(message).get("type")
            if kind == "Finalize":
                self.finalized += 1
                await ws.send(results(self.transcript))
            elif kind == "CloseStream":
                await ws.close()
                return

    async def __aenter__(self) -> FakeDeepgram:
        self._server = await serve(self._handle, "127.0.0.1", 0, process_request=self._check)
        port = self._server.sockets[0].getsockname()[1]
        self.base_url = f"ws://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc) -> None:
        self._server.close()
        await self._server.wait_closed()

    async def kill(self) -> None:
        """Die mid-call: drop every connection without a goodbye and stop listening."""
        self.killed = True
        for connection in list(self._server.connections):
            connection.transport.abort()
        self._server.close()
        await self._server.wait_closed()


def tool_call(tool: str, /, **arguments) -> dict:
    """A scripted answer for `FakeOpenAIChat`: call `tool` with `arguments`."""
    return {"tool": tool, "arguments": arguments}


class FakeOpenAIChat:
    """`mode`: "ok", "error" (500), "hang" (never answers); `fail_first` requests fail with a 500 first.

    `script`: answers for the first requests in order, each a text or a `tool_call(...)`; `reply` after that.
    """

    def __init__(self, reply: str, mode: str = "ok", fail_first: int = 0, script: list | None = None):
        self.reply = reply
        self.mode = mode
        self.fail_first = fail_first
        self.script = list(script or [])
        self.requests: list[dict] = []

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        if request.headers.get("Authorization") != f"Bearer {OPENAI_KEY}":
            return web.json_response({"error": {"message": "Incorrect API key provided"}}, status=401)
        if self.mode == "error" or len(self.requests) <= self.fail_first:
            return web.json_response({"error": {"message": "The server had an error"}}, status=500)
        if self.mode == "hang":
            await asyncio.sleep(3600)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        answer = self.script.pop(0) if self.script else self.reply
        model = body.get("model", "m")
        if isinstance(answer, dict):
            deltas = _tool_call_deltas(answer, len(self.requests))
            finish = "tool_calls"
        else:
            words = answer.split(" ")
            last = len(words) - 1
            deltas = [{"role": "assistant", "content": w + (" " if i < last else "")} for i, w in enumerate(words)]
            finish = "stop"
        for delta in deltas:
            await response.write(f"data: {json.dumps(_chunk(model, delta, None))}\n\n".encode())
        await response.write(f"data: {json.dumps(_chunk('m', {}, finish))}\n\ndata: [DONE]\n\n".encode())
        await response.write_eof()
        return response

    async def __aenter__(self) -> FakeOpenAIChat:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}/v1"
        return self

    async def __aexit__(self, *exc) -> None:
        await self._runner.cleanup()

    async def kill(self) -> None:
        """Die mid-call: stop listening and drop open connections (later requests are refused)."""
        await self._runner.cleanup()


def _chunk(model: str, delta: dict, finish: str | None) -> dict:
    return {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def _tool_call_deltas(call: dict, number: int) -> list[dict]:
    """A tool call streamed as OpenAI does: the name first, then the arguments in pieces."""
    arguments = json.dumps(call["arguments"])
    half = len(arguments) // 2
    head = {"index": 0, "id": f"call_{number}", "type": "function", "function": {"name": call["tool"], "arguments": ""}}
    return [
        {"role": "assistant", "content": None, "tool_calls": [head]},
        {"tool_calls": [{"index": 0, "function": {"arguments": arguments[:half]}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": arguments[half:]}}]},
    ]
