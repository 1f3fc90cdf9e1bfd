"""A stand-in for the OpenAI speech API on 127.0.0.1: `POST /v1/audio/speech` returning 24 kHz PCM."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from voiceclone.audio.pcm import pcm16

GOOD_KEY = "sk-test-good"


class FakeSpeechServer:
    """`mode`: "ok", "hang" (never answers in time) or "error" (500)."""

    def __init__(self, mode: str = "ok", audio: np.ndarray | None = None):
        self.mode = mode
        self.requests: list[dict] = []
        t = np.arange(24000) / 24000
        self.audio = audio if audio is not None else (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                server.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
                if self.path != "/v1/audio/speech":
                    return self._json(404, {"error": {"message": "not found"}})
                if self.headers.get("Authorization") != f"Bearer {GOOD_KEY}":
                    return self._json(
                        401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}
                    )
                if server.mode == "hang":
                    time.sleep(5)
                    return self._json(500, {"error": {"message": "too late"}})
                if server.mode == "error":
                    return self._json(500, {"error": {"message": "the model is overloaded"}})
                pcm = pcm16(server.audio)
                self.send_response(200)
                self.send_header("Content-Type", "audio/pcm")
                self.send_header("Content-Length", str(len(pcm)))
                self.end_headers()
                self.wfile.write(pcm)

            def _json(self, status, payload):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except BrokenPipeError:
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeSpeechServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
