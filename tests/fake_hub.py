"""A stand-in for the Hugging Face hub on 127.0.0.1: serves files at `/{repo}/resolve/{rev}/{path}`."""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeHub:
    """Serve `files` (`{"repo/id": {"path/in/repo": bytes}}`) the way the hub's resolve endpoint does."""

    def __init__(self, files: dict[str, dict[str, bytes]]):
        self.files = files
        self.requests: list[str] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def _lookup(self):
                hub.requests.append(f"{self.command} {self.path}")
                for repo, entries in hub.files.items():
                    prefix = f"/{repo}/resolve/"
                    if self.path.startswith(prefix):
                        _, _, path = self.path[len(prefix) :].partition("/")
                        if path in entries:
                            return entries[path]
                return None

            def _headers(self, body: bytes, status: int = 200, length: int | None = None):
                self.send_response(status)
                self.send_header("X-Repo-Commit", "0" * 40)
                self.send_header("ETag", f'"{hashlib.sha256(body).hexdigest()}"')
                self.send_header("Content-Length", str(len(body) if length is None else length))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()

            def do_HEAD(self):
                body = self._lookup()
                if body is None:
                    self.send_error(404)
                    return
                self._headers(body)

            def do_GET(self):
                body = self._lookup()
                if body is None:
                    self.send_error(404)
                    return
                start = 0
                rng = self.headers.get("Range")
                if rng and rng.startswith("bytes="):
                    start = int(rng[6:].split("-")[0] or 0)
                part = body[start:]
                self._headers(body, 206 if start else 200, len(part))
                self.wfile.write(part)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeHub:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
