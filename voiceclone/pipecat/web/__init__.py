"""The browser side of the WebRTC bot: our own page (static files, no build step, no CDN) and its API."""

from __future__ import annotations

from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
