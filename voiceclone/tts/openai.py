"""A base voice from the OpenAI speech API, or any server that speaks it (`base_url`)."""

from __future__ import annotations

import hashlib
import os
from typing import Optional
from urllib.parse import urlsplit

import numpy as np
from pydantic import Field

from voiceclone.audio.pcm import from_pcm16
from voiceclone.tts.base import EngineSettings, TTSError

PCM_RATE = 24000  # the API's `pcm` format: 16-bit little-endian mono at 24 kHz


class OpenAISettings(EngineSettings):
    """Model, voice and server of the OpenAI speech API (the `tts.openai` config section).

    The key comes from `OPENAI_API_KEY` (or `.env`) unless `api_key` is given.
    """

    model: str = "gpt-4o-mini-tts"
    voice: str = "alloy"
    base_url: Optional[str] = None
    api_key: Optional[str] = Field(default=None, repr=False)
    timeout_s: float = Field(default=20.0, gt=0, le=600)
    instructions: Optional[str] = None


class OpenAIEngine:
    """Blocking calls to `/audio/speech`, one per sentence."""

    sample_rate = PCM_RATE

    def __init__(self, settings: OpenAISettings | None = None):
        openai = _openai()
        self.settings = s = settings or OpenAISettings()
        key = s.api_key or os.environ.get("OPENAI_API_KEY")
        if not key:
            raise TTSError("the openai engine needs an API key: set OPENAI_API_KEY (in the environment or .env)")
        base_url = s.base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
        if urlsplit(base_url).scheme not in ("http", "https") or not urlsplit(base_url).netloc:
            where = "base_url" if s.base_url else "OPENAI_BASE_URL"
            raise TTSError(f"{where} {base_url!r} is not an http(s) address, e.g. https://api.openai.com/v1")
        self._client = openai.OpenAI(api_key=key, base_url=base_url, timeout=s.timeout_s, max_retries=1)
        self._base_url = base_url
        self._identity = hashlib.sha256(f"openai|{base_url}|{s.model}|{s.voice}".encode()).hexdigest()[:24]

    @property
    def identity(self) -> str:
        """Server, model and voice."""
        return self._identity

    def synthesize(self, sentence: str) -> np.ndarray:
        """One sentence as 24 kHz float32."""
        openai = _openai()
        s = self.settings
        extra = {"instructions": s.instructions} if s.instructions else {}
        try:
            response = self._client.audio.speech.create(
                model=s.model, voice=s.voice, input=sentence, response_format="pcm", **extra
            )
            data = response.read()
        except openai.AuthenticationError:
            raise TTSError(f"the speech server at {self._base_url} rejected the API key (OPENAI_API_KEY)") from None
        except openai.APITimeoutError:
            raise TTSError(f"the speech server at {self._base_url} did not answer within {s.timeout_s:.0f} s") from None
        except openai.APIConnectionError:
            raise TTSError(f"cannot reach the speech server at {self._base_url}") from None
        except openai.APIStatusError as exc:
            raise TTSError(f"the speech server at {self._base_url} answered {exc.status_code}: {_brief(exc)}") from None
        if len(data) % 2:
            data = data[:-1]
        return from_pcm16(data)


def _brief(exc: Exception) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
    return str(exc).splitlines()[0][:200]


def _openai():
    """The openai client library, imported on first use: it takes 0.4 s that the default Piper voice never needs."""
    import openai

    return openai
