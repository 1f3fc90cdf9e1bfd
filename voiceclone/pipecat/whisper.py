"""Pipecat's Whisper service on a model loaded once per process, so that a second call does not load it again."""

from __future__ import annotations

from pipecat.services.whisper.stt import WhisperSTTService


class SharedWhisperSTTService(WhisperSTTService):
    """`WhisperSTTService` given an already loaded faster-whisper model instead of loading its own."""

    def __init__(self, *, model, **kwargs):
        """`model`: a loaded `faster_whisper.WhisperModel` (shared: CTranslate2 queues concurrent calls)."""
        self._shared_model = model
        super().__init__(**kwargs)

    def _load(self):
        self._model = self._shared_model
        unsupported = self._unsupported_language()
        if unsupported:
            raise ValueError(unsupported)
