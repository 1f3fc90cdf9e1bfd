"""Whisper for a live turn: the encoder sees only the utterance (padded to whole seconds), not a 30 s window.

faster-whisper always encodes a 30 s window; for a 3 s question on a 2-core CPU that is ~0.5 s of a turn's
latency, almost all of it spent encoding silence. CTranslate2's Whisper encoder accepts a shorter window, which
costs in proportion (a 4 s window: ~50 ms). The decoder is greedy (beam search costs more than it helps on short
turns) and told the language. Shorter windows make Whisper prone to repeating itself ("Hello? Hello? Hello"), so
a repetition of the opening words is cut off (`drop_repetition`).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator

import ctranslate2
import numpy as np
from faster_whisper.tokenizer import Tokenizer
from loguru import logger
from pipecat.frames.frames import ErrorFrame, Frame, TranscriptionFrame
from pipecat.utils.time import time_now_iso8601

from voiceclone.pipecat.whisper import SharedWhisperSTTService

RATE = 16000
MIN_WINDOW_S = 4  # shorter windows make Whisper tiny hallucinate on one-word turns
PAD_S = 0.5  # silence after the utterance (Pipecat already adds 0.5 s to a segment), so that it ends clearly
MAX_WINDOW_S = 30  # Whisper's own window: longer audio goes through faster-whisper's usual path
TOKENS_PER_S = 8  # a generous ceiling on what can be said per second (English: ~4 tokens/s)
# Whisper's no-speech probability is higher through a short window (0.3 to 0.5 for a clear "List voices."),
# and the VAD has already found speech in the segment: only a clear verdict of silence drops it.
NO_SPEECH_PROB = 0.6


def window_seconds(samples: int) -> int:
    """The encoder window for an utterance: the utterance and `PAD_S`, in whole seconds, at least `MIN_WINDOW_S`."""
    return int(min(MAX_WINDOW_S, max(MIN_WINDOW_S, np.ceil(samples / RATE + PAD_S))))


def drop_repetition(text: str) -> str:
    """`text` without a repetition of its own beginning ("What now? What now? What" -> "What now?").

    A repetition counts when the words from some point on repeat the opening words, and the first copy ended a
    sentence or at least two words repeat, so that "Dogs like other dogs" stays as it is.

    Args:
        text: A transcript.

    Returns:
        The transcript, cut before the repetition if there is one.
    """
    words = text.split()
    plain = [re.sub(r"[^\w']", "", w).lower() for w in words]
    for start in range(1, len(words)):
        repeated = len(words) - start
        repeats = plain[0] and all(plain[start + i] == plain[i] for i in range(repeated))
        if repeats and (words[start - 1][-1:] in ".?!" or repeated >= 2):
            return " ".join(words[:start]).rstrip(",;:")
    return text


class FastWhisperSTTService(SharedWhisperSTTService):
    """`SharedWhisperSTTService` transcribing each segment through a window the size of the utterance."""

    def __init__(self, **kwargs):
        """Pipecat's `WhisperSTTService` arguments; `model` is the shared faster-whisper model."""
        super().__init__(**kwargs)
        self._prompt: list[int] | None = None
        self._tokens = None  # the model's tokenizer, made once

    async def run_stt(self, audio: bytes) -> AsyncGenerator[Frame, None]:
        """Transcribe one segment (16-bit PCM at 16 kHz).

        Yields:
            A `TranscriptionFrame` (nothing for silence), or an `ErrorFrame` if the model fails.
        """
        samples = np.frombuffer(audio, dtype=np.int16).astype(np.float32) / 32768.0
        await self.start_processing_metrics()
        try:
            text = await asyncio.to_thread(self._transcribe, samples)
        except Exception as exc:  # CTranslate2 raises plain RuntimeErrors
            await self.stop_processing_metrics()
            yield ErrorFrame(f"{self}: Whisper failed: {exc}")
            return
        await self.stop_processing_metrics()
        if text:
            logger.debug(f"Transcription: [{text}]")
            yield TranscriptionFrame(text, self._user_id, time_now_iso8601(), self._settings.language)

    def _transcribe(self, samples: np.ndarray) -> str:
        """Blocking: the segment's text, stripped; empty when Whisper hears no speech."""
        model = self._model
        if len(samples) / RATE + PAD_S > MAX_WINDOW_S:
            segments, _ = model.transcribe(samples, language=self._language_code(), beam_size=1)
            return " ".join(s.text.strip() for s in segments).strip()
        window = window_seconds(len(samples))
        padded = np.zeros(window * RATE, dtype=np.float32)
        padded[: len(samples)] = samples
        features = model.feature_extractor(padded, padding=0)
        features = features[:, : features.shape[-1] - features.shape[-1] % 2]  # the encoder halves the frames
        encoded = model.model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(features[None])))
        result = model.model.generate(
            encoded,
            [self._prompt_tokens()],
            beam_size=1,
            max_length=int(16 + TOKENS_PER_S * len(samples) / RATE),
            suppress_blank=True,
            return_no_speech_prob=True,
        )[0]
        if result.no_speech_prob >= NO_SPEECH_PROB:
            return ""
        tokenizer = self._tokenizer()
        text = tokenizer.decode([t for t in result.sequences_ids[0] if t < tokenizer.eot])
        return drop_repetition(text.strip())

    def _language_code(self) -> str | None:
        language = self._settings.language
        return str(language) if isinstance(language, str) else None

    def _tokenizer(self):
        if self._tokens is None:
            model = self._model
            self._tokens = Tokenizer(
                model.hf_tokenizer,
                model.model.is_multilingual,
                task="transcribe",
                language=self._language_code() if model.model.is_multilingual else None,
            )
        return self._tokens

    def _prompt_tokens(self) -> list[int]:
        """Start of transcript, (language, task for a multilingual model), no timestamps."""
        if self._prompt is None:
            tokenizer = self._tokenizer()
            self._prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
        return self._prompt
