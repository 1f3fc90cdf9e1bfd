"""Whisper for a live turn: the encoder sees only the utterance (padded to whole seconds), not a 30 s window.

faster-whisper always encodes a 30 s window; for a 3 s question on a 2-core CPU that is ~0.5 s of a turn's
latency, almost all of it spent encoding silence. CTranslate2's Whisper encoder accepts a shorter window, which
costs in proportion (a 4 s window: ~50 ms). The decoder is greedy (beam search costs more than it helps on short
turns) and told the language. Shorter windows make Whisper prone to repeating itself ("Hello? Hello? Hello"), so
a repetition of the opening words is cut off (`drop_repetition`).

Given the call's `SpeechPauses`, transcription starts when the caller's speech pauses, not when the VAD calls it
over `stop_secs` later: by the VAD's stop the text is usually there already, and the turn's speech-to-text costs
nothing more. It is dropped if the caller goes on, and redone from the whole utterance if anything loud enough
to be a word came after the pause (`tail_is_quiet`).

Given the call's `TurnWords`, it also transcribes the words so far while the caller speaks, after each
`INTERIM_EVERY_S` of new speech, when the LLM can use them (`turn_words.py`): the LLM reads them ahead, so that
at the turn's end only the last words are left for it to read.

An early transcript is also told downstream as soon as it is made (an `EagerTranscriptionFrame`): a turn that
reads as finished can be answered speculatively while the VAD waits out its `stop_secs` (`turns.py`). If the
caller goes on, an `EagerEndOfTurnCancelFrame` withdraws it.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from collections.abc import AsyncGenerator
from dataclasses import dataclass

import ctranslate2
import numpy as np
from faster_whisper.tokenizer import Tokenizer
from loguru import logger
from pipecat.frames.frames import (
    EagerEndOfTurnCancelFrame,
    EagerTranscriptionFrame,
    ErrorFrame,
    Frame,
    TranscriptionFrame,
)
from pipecat.utils.time import time_now_iso8601

from voiceclone.audio.pcm import from_pcm16
from voiceclone.pipecat.speech_pauses import SpeechPauses
from voiceclone.pipecat.turn_words import TurnWords
from voiceclone.pipecat.whisper import SharedWhisperSTTService

RATE = 16000
MIN_WINDOW_S = 4  # shorter windows make Whisper tiny hallucinate on one-word turns
PAD_S = 0.5  # silence after the utterance (Pipecat already adds 0.5 s to a segment), so that it ends clearly
MAX_WINDOW_S = 30  # Whisper's own window: longer audio goes through faster-whisper's usual path
TOKENS_PER_S = 8  # a generous ceiling on what can be said per second (English: ~4 tokens/s)
# Whisper's no-speech probability is higher through a short window (0.3 to 0.5 for a clear "List voices."),
# and the VAD has already found speech in the segment: only a clear verdict of silence drops it.
NO_SPEECH_PROB = 0.6
# An early transcript stands only if the audio after the pause stays this far under the utterance's speech level
# (its loud frames, 90th percentile), so that a soft last word the VAD did not count as speech is not lost.
TAIL_BELOW_SPEECH_DB = 12.0
LEVEL_FRAME = 320  # 20 ms at 16 kHz
# While the caller speaks, the words so far are transcribed after each this much new speech (for `TurnWords`).
# Each pass costs Whisper ~50-90 ms on 2 cores, off the turn's path; one still running at a pause after all the
# speech is that pause's transcript (`_interim_stands`).
INTERIM_EVERY_S = 1.0


def _frame_levels_db(samples: np.ndarray) -> np.ndarray:
    n = max(1, len(samples) // LEVEL_FRAME)
    frames = samples[: n * LEVEL_FRAME].reshape(n, -1) if len(samples) >= LEVEL_FRAME else samples[None]
    return 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-10)


def tail_is_quiet(utterance: np.ndarray, tail: np.ndarray) -> bool:
    """Whether `tail` (the audio after a pause) holds nothing that could be a word of `utterance`'s speaker.

    Args:
        utterance: The speech up to the pause, as floats.
        tail: What came after it until the VAD's stop.

    Returns:
        True when every 20 ms of the tail is at least `TAIL_BELOW_SPEECH_DB` under the utterance's speech level.
    """
    if len(tail) == 0:
        return True
    if len(utterance) == 0:
        return False
    speech_db = float(np.percentile(_frame_levels_db(utterance), 90))
    return float(_frame_levels_db(tail).max()) < speech_db - TAIL_BELOW_SPEECH_DB


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


def encode_utterance(model, samples: np.ndarray):
    """Blocking: Whisper's encoding of `samples` (16 kHz) padded with silence to `window_seconds`."""
    padded = np.zeros(window_seconds(len(samples)) * RATE, dtype=np.float32)
    padded[: len(samples)] = samples
    features = model.feature_extractor(padded, padding=0)
    features = features[:, : features.shape[-1] - features.shape[-1] % 2]  # the encoder halves the frames
    return model.model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(features[None])))


def transcript_tokenizer(model, language: str | None) -> Tokenizer:
    """The model's tokenizer for transcribing (told the language when the model is multilingual)."""
    multilingual = model.model.is_multilingual
    return Tokenizer(model.hf_tokenizer, multilingual, task="transcribe", language=language if multilingual else None)


def prompt_tokens(tokenizer: Tokenizer) -> list[int]:
    """Start of transcript, (language, task for a multilingual model), no timestamps."""
    return [*tokenizer.sot_sequence, tokenizer.no_timestamps]


def warm_up(model) -> None:
    """One transcription of silence through a turn's path (`FastWhisperSTTService._transcribe`): CTranslate2's
    first run on a model sets up its buffers (a 2.5 s question: 126-145 ms the first time, 80-103 ms after), so
    it is done at load (~150 ms), on nobody's turn."""
    encoded = encode_utterance(model, np.zeros(0, dtype=np.float32))
    model.model.generate(encoded, [prompt_tokens(transcript_tokenizer(model, "en"))], beam_size=1, max_length=8)


@dataclass
class _Early:
    """A transcription started at a pause in the speech."""

    size: int  # bytes of the utterance buffer it transcribes
    task: asyncio.Future  # its text
    done_at: float | None = None  # monotonic times it finished and the VAD stopped
    stopped_at: float | None = None
    told: bool = False  # its text went downstream as an eager end of turn


class FastWhisperSTTService(SharedWhisperSTTService):
    """`SharedWhisperSTTService` transcribing each segment through a window the size of the utterance."""

    def __init__(self, *, pauses: SpeechPauses | None = None, words: TurnWords | None = None, **kwargs):
        """Pipecat's `WhisperSTTService` arguments; `model` is the shared faster-whisper model.

        Args:
            pauses: The call's speech pauses (from its VAD): transcribe from each pause, not from the VAD's stop.
            words: The call's link to its LLM: tell it the words so far while the caller speaks.
            **kwargs: `SharedWhisperSTTService`'s.
        """
        super().__init__(**kwargs)
        self._words = words
        self._interim: asyncio.Future | None = None  # the words so far being transcribed
        self._interim_from = 0  # bytes in the utterance buffer when the last one started
        self._prompt: list[int] | None = None
        self._tokens = None  # the model's tokenizer, made once
        self._early: _Early | None = None  # started at the current pause
        self._early_running: asyncio.Future | None = None  # at most one early transcription at a time per call
        self._paused_again = False  # a pause came while one ran: transcribe again when it is done
        self._ready: deque[_Early | None] = deque()  # per queued segment: the early transcript that stands for it
        if pauses is not None:
            pauses.listen(self._speech_paused, self._speech_resumed)

    def _speech_paused(self) -> None:
        """Start transcribing what was said up to this pause, off the event loop (after the one running, if any)."""
        if not self._user_speaking:
            return
        if self._words is not None:
            self._words.paused()  # the reader stops: this transcription is on the turn's path
        if self._early_running is not None and not self._early_running.done():
            self._paused_again = True  # spoke and paused again while the last pause's text was being made
            return
        utterance = from_pcm16(bytes(self._audio_buffer))
        if self._interim_stands(utterance):  # the words so far being transcribed are all of them: no second pass
            early = _Early(self._interim_from, self._interim)
        else:  # (after the one running, if any: the model takes one at a time)
            early = _Early(2 * len(utterance), asyncio.ensure_future(asyncio.to_thread(self._transcribe, utterance)))

        def finished(task: asyncio.Future) -> None:
            early.done_at = time.monotonic()
            if not task.cancelled() and task.exception() is None and task.result() and self._early is early:
                early.told = True  # still the pause the caller is in: its text may be the whole turn
                self._push_soon(EagerTranscriptionFrame(task.result(), self._user_id, time_now_iso8601()))
            if self._paused_again:
                self._paused_again = False
                self._speech_paused()

        early.task.add_done_callback(finished)
        self._early, self._early_running = early, early.task

    def _interim_stands(self, utterance: np.ndarray) -> bool:
        """Whether the transcription of the words so far, still running, covers all the speech up to this pause
        (`utterance`: nothing loud enough to be a word came after it started): it is then the pause's transcript.
        Otherwise the pause's own would wait for it (Whisper transcribes one at a time) and come ~0.1 s late."""
        if self._interim is None or self._interim.done():
            return False
        start = self._interim_from // 2  # bytes of 16-bit PCM -> samples
        return tail_is_quiet(utterance[:start], utterance[start:])

    def _speech_resumed(self) -> None:
        early, self._early = self._early, None  # the caller went on: that text is only the start
        self._paused_again = False
        if early is not None and early.told:  # an answer to it may be on its way: withdraw it
            self._push_soon(EagerEndOfTurnCancelFrame())

    async def _handle_user_started_speaking(self, frame):
        await super()._handle_user_started_speaking(frame)
        self._interim_from = len(self._audio_buffer)

    async def process_audio_frame(self, frame, direction):
        """Buffer the audio as Pipecat does; while the caller speaks, now and then transcribe the words so far."""
        await super().process_audio_frame(frame, direction)
        if self._words is not None and self._user_speaking:
            self._transcribe_so_far()

    def _transcribe_so_far(self) -> None:
        """After each `INTERIM_EVERY_S` of new speech, transcribe the utterance so far for `TurnWords`, unless a
        transcription is running, the speech has paused (the early transcript's time) or the reader is busy."""
        if len(self._audio_buffer) - self._interim_from < INTERIM_EVERY_S * RATE * 2 or self._early is not None:
            return
        if any(task is not None and not task.done() for task in (self._interim, self._early_running)):
            return
        if not self._words.wanted():
            return
        self._interim_from = len(self._audio_buffer)
        task = asyncio.ensure_future(asyncio.to_thread(self._transcribe, from_pcm16(bytes(self._audio_buffer))))

        def finished(task: asyncio.Future) -> None:
            if task.cancelled() or task.exception() is not None or not task.result():
                return
            if self._user_speaking and self._early is None:  # still speaking: these are the words so far
                self._words.heard(task.result())

        task.add_done_callback(finished)
        self._interim = task

    def _push_soon(self, frame: Frame) -> None:
        """Push `frame` from a callback that cannot wait (the VAD's, a finished transcription's), in order."""
        self.create_task(self.push_frame(frame), "push")

    async def _handle_user_stopped_speaking(self, frame):
        """Queue the segment as Pipecat does, with the early transcript that stands for it, if one does."""
        early, self._early = self._early, None
        if self.is_usable:
            buffer = from_pcm16(bytes(self._audio_buffer))
            stands = early is not None and tail_is_quiet(buffer[: early.size // 2], buffer[early.size // 2 :])
            if early is not None and not stands:
                logger.debug("early transcript dropped: sound after the pause")
            self._ready.append(early if stands else None)
            if stands:
                early.stopped_at = time.monotonic()
        await super()._handle_user_stopped_speaking(frame)

    async def run_stt(self, audio: bytes) -> AsyncGenerator[Frame, None]:
        """Transcribe one segment (16-bit PCM at 16 kHz), or take the early transcript that stands for it.

        Yields:
            A `TranscriptionFrame` (nothing for silence), or an `ErrorFrame` if the model fails.
        """
        early = self._ready.popleft() if self._ready else None
        await self.start_processing_metrics()
        try:
            text = await self._early_text(early)
            if text is None:
                text = await asyncio.to_thread(self._transcribe, from_pcm16(audio))
        except Exception as exc:  # CTranslate2 raises plain RuntimeErrors
            await self.stop_processing_metrics()
            yield ErrorFrame(f"{self}: Whisper failed: {exc}")
            return
        await self.stop_processing_metrics()
        if text:
            logger.debug(f"Transcription: [{text}]")
            yield TranscriptionFrame(text, self._user_id, time_now_iso8601(), self._settings.language)

    async def _early_text(self, early: _Early | None) -> str | None:
        """The early transcript's text (waiting for it if it is still running), or None to transcribe anew."""
        if early is None:
            return None
        try:
            text = await early.task
        except Exception as exc:
            logger.debug(f"early transcript failed ({exc}): transcribing the segment")
            return None
        ahead = (early.stopped_at or 0.0) - (early.done_at or 0.0)
        logger.debug(f"early transcript: ready {ahead * 1000:.0f} ms before the VAD's stop")
        return text

    def _transcribe(self, samples: np.ndarray) -> str:
        """Blocking: the segment's text, stripped; empty when Whisper hears no speech."""
        model = self._model
        if len(samples) / RATE + PAD_S > MAX_WINDOW_S:
            segments, _ = model.transcribe(samples, language=self._language_code(), beam_size=1)
            return " ".join(s.text.strip() for s in segments).strip()
        encoded = encode_utterance(model, samples)
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

    def _tokenizer(self) -> Tokenizer:
        if self._tokens is None:
            self._tokens = transcript_tokenizer(self._model, self._language_code())
        return self._tokens

    def _prompt_tokens(self) -> list[int]:
        if self._prompt is None:
            self._prompt = prompt_tokens(self._tokenizer())
        return self._prompt
