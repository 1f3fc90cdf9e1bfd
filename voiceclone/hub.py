"""The Hugging Face hub as the two downloads see it (converter checkpoints, GGUF models): can it be reached now?"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

from huggingface_hub import constants


def hub_endpoint() -> str:
    """The hub's address: `$HF_ENDPOINT`, else huggingface.co."""
    return os.environ.get("HF_ENDPOINT", constants.ENDPOINT)


def unreachable(endpoint: str | None = None, timeout: float = 5.0) -> str | None:
    """Why the hub cannot be reached, in a few words; None when a connection opens.

    Fails in seconds, where the hub client would retry for a minute before giving up.
    """
    endpoint = endpoint or hub_endpoint()
    url = urlparse(endpoint)
    host, port = url.hostname, url.port or (443 if url.scheme == "https" else 80)
    if not host:
        return f"HF_ENDPOINT {endpoint!r} is not a URL"
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as exc:
        return f"{host} is not reachable: {exc.strerror or exc}"
