"""`ClonedVoiceTTSService`: a Pipecat TTS service speaking through a `ClonedVoice` (base engine + converter)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import soxr
from loguru import logger
from pipecat.frames.frames import ErrorFrame, Frame, TTSAudioRawFrame, TTSStoppedFrame
from pipecat.services.settings import TTSSettings
from pipecat.services.tts_service import TTSService
from pipecat.utils.types import NOT_GIVEN, NotGiven

from voiceclone.audio.pcm import pcm16
from voiceclone.cloning.cloned import ClonedVoice
from voiceclone.cpu import FIRST_AUDIO
from voiceclone.errors import UserError
from voiceclone.pipecat.lines import FixedLines, normalise
from voiceclone.pipecat.quick_start import QuickStartAggregator
from voiceclone.tts.sentences import bound, pause_after, quick_start

# Steady chunk for live calls: at most ~0.25 s of work, so an interruption waits little for the chunk in
# flight on the single conversion thread.
BOT_CHUNK_FRAMES = 64

# The longest a sentence may take to give its first chunk before Pipecat declares it "completed with no audio"
# (its `stop_frame_timeout_s`, 3 s by default; three in a row end the call). Piper + conversion: a 300-character
# unit is synthesised in well under a second on a 2-core CPU, so a few seconds covers a loaded machine.
LOCAL_FIRST_CHUNK_S = 6.0
# An HTTP engine (OpenAI) may use its whole timeout twice (its client retries once), then convert.
HTTP_ATTEMPTS = 2
HTTP_MARGIN_S = 3.0
# A live answer is synthesised in units of at most this many characters (cut at clauses, then words): base
# synthesis of a unit cannot be stopped half way, so this bounds what an interruption waits for (and a long
# sentence starts sooner); `speak` keeps the larger units of `voiceclone.tts.sentences`.
BOT_UNIT_CHARS = 160
# A cached line is handed over in pieces of this many seconds (the output transport cuts them finer).
LINE_PIECE_S = 0.5


def first_chunk_timeout(engine) -> float:
    """The worst time `engine` plus the converter may take to give a sentence's first chunk, in seconds.

    Args:
        engine: A base engine; one with `settings.timeout_s` (the OpenAI engine) is an HTTP engine.

    Returns:
        The `stop_frame_timeout_s` the service should use.
    """
    timeout = getattr(getattr(engine, "settings", None), "timeout_s", None)
    if isinstance(timeout, (int, float)) and timeout > 0:
        return HTTP_ATTEMPTS * float(timeout) + HTTP_MARGIN_S
    return LOCAL_FIRST_CHUNK_S


@dataclass
class ClonedVoiceTTSSettings(TTSSettings):
    """`voice` is an enrolled voice's name; `tau` the conversion's sampling temperature."""

    tau: float | None | NotGiven = field(default_factory=lambda: NOT_GIVEN)


_DONE = object()  # end of one sentence's chunks, from the worker thread


class ClonedVoiceTTSService(TTSService):
    """Sentence by sentence: base synthesis, then streaming conversion; chunks are pushed as they come.

    Blocking work runs on one dedicated thread (synthesis and conversion share the CPU; two utterances
    never compete). The thread works one step at a time (a unit's base synthesis, then one conversion chunk)
    and checks a generation counter between steps: an interruption bumps it, so what the thread would still do
    for the interrupted answer is abandoned and the next answer starts after at most the step in flight.
    """

    Settings = ClonedVoiceTTSSettings
    _settings: ClonedVoiceTTSSettings

    def __init__(
        self,
        *,
        voice: ClonedVoice,
        voice_name: str,
        resolve_voice: Callable[[str], np.ndarray],
        tau: float | None = None,
        chunk_frames: int = BOT_CHUNK_FRAMES,
        settings: ClonedVoiceTTSSettings | None = None,
        stop_frame_timeout_s: float | None = None,
        lines: FixedLines | None = None,
        **kwargs,
    ):
        """Speak through `voice`; Pipecat's TTS arguments (sample_rate, ...) pass through `kwargs`.

        Args:
            voice: The cloned voice to start with (shared engine and converter; this service never changes it).
            voice_name: Its enrolled name, reported as the `voice` setting.
            resolve_voice: Enrolled name -> embedding, for `TTSUpdateSettingsFrame(voice=...)`; raises
                `UserError` for a name it cannot use.
            tau: Conversion sampling temperature, 0 to 2; None takes the voice's default.
            chunk_frames: Steady conversion chunk in spectrogram frames (256 samples each at 22050 Hz).
            settings: Initial settings overriding the above (Pipecat's style).
            stop_frame_timeout_s: How long a sentence may go without audio; None: the engine's worst first chunk.
            lines: Fixed lines (greeting, apologies) played from their rendered audio, without synthesis.
        """
        store = self.Settings(model=None, voice=voice_name, language=None, tau=voice.tau if tau is None else tau)
        if settings is not None:
            store.apply_update(settings)
        if stop_frame_timeout_s is None:
            stop_frame_timeout_s = first_chunk_timeout(voice.engine)
        super().__init__(
            push_start_frame=True,
            push_stop_frames=True,
            stop_frame_timeout_s=stop_frame_timeout_s,
            settings=store,
            **kwargs,
        )
        # An answer's first words are released before its first sentence is complete (as Cartesia's and Rime's
        # services replace the base class's aggregator with their own).
        self._text_aggregator = QuickStartAggregator(
            aggregation_type=self._text_aggregator.aggregation_type, language=self._text_aggregator.language
        )
        self._voice = voice
        self._chunk_frames = chunk_frames
        self._resolve_voice = resolve_voice
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cloned-voice")
        self._generation = 0  # bumped to abandon the work of an interrupted sentence (read by the thread)
        self._running: tuple[str, int] | None = None  # (context id, generation) of the sentence being made
        self._silent_contexts: set[str] = set()  # contexts whose last sentence gave no audio
        self._lines = lines
        self._rendering: dict[str, Any] = {}  # fixed line -> the future of its rendering (prerender_lines)
        self._last_context: str | None = None  # the context of the last sentence: a new one starts an answer
        self._mid_sentence = False  # the last unit stopped mid-sentence (worker thread): the next goes on from it

    @property
    def voice(self) -> ClonedVoice:
        """The cloned voice the next sentence is spoken with."""
        return self._voice

    def prerender_lines(self) -> None:
        """Render the fixed lines this voice has no audio for yet, first thing on the worker thread.

        Called before a call starts, so the greeting is ready (or nearly) when the caller connects; a sentence
        queued meanwhile waits for it and then finds its line rendered.
        """
        if self._lines is None:
            return
        for text in self._lines.texts:  # one job each, the greeting first: its sentence waits for its line only
            job = self._executor.submit(self._lines.render, self._voice, text, self._tau(), self._chunk_frames)
            self._rendering[text] = job

    async def _rendered_line(self, text: str, tau) -> bool:
        """Whether `text` is a fixed line whose audio is ready, after waiting for its own rendering if it is under
        way (rather than queueing behind every line still to render)."""
        if self._lines is None or not self._lines.wants(text):
            return False
        job = self._rendering.get(normalise(text))
        if job is not None and not job.done():
            with contextlib.suppress(Exception):  # a failed rendering is made again, and reported, by the sentence
                await asyncio.wrap_future(job)
        return self._lines.load(self._voice, text, tau) is not None

    def _tau(self) -> float | None:
        return self._settings.tau if isinstance(self._settings.tau, (int, float)) else None

    def can_generate_metrics(self) -> bool:
        """TTFB and processing metrics are reported (and include the conversion)."""
        return True

    async def cleanup(self):
        """Release the conversion thread (and stop what it was doing)."""
        await super().cleanup()
        self._generation += 1
        self._executor.shutdown(wait=False, cancel_futures=True)

    @property
    def current_voice(self) -> str:
        """The enrolled voice this service speaks in now (a refused switch leaves the previous one)."""
        return str(self._settings.voice)

    async def _update_settings(self, delta: ClonedVoiceTTSSettings) -> dict[str, Any]:
        previous_voice = self._settings.voice
        changed = await super()._update_settings(delta)
        if "voice" in changed:
            name = str(self._settings.voice)
            try:
                embedding = await asyncio.get_running_loop().run_in_executor(self._executor, self._resolve_voice, name)
            except UserError as exc:
                self._settings.voice = previous_voice
                await self.push_error(f"cannot switch to voice {name!r}: {exc}")
            else:
                self._voice = self._voice.with_target(embedding)
                logger.info(f"{self}: now speaking as {name!r}")
        return changed

    async def on_audio_context_interrupted(self, context_id: str):
        """An interrupted answer's remaining synthesis and conversion are abandoned, not finished."""
        await super().on_audio_context_interrupted(context_id)
        if self._running is not None and self._running[0] == context_id:
            self._generation += 1

    async def on_turn_context_completed(self):
        """Close a turn whose last sentence gave no audio now, not after `stop_frame_timeout_s`.

        The base class closes the context of an in-process service only when its last sentence yielded audio;
        after a failed synthesis it would wait out the timeout (tens of seconds for an HTTP engine), holding the
        frames behind it.
        """
        context_id = self._turn_context_id
        if context_id in self._silent_contexts and self.audio_context_available(context_id):
            await self.append_to_audio_context(context_id, TTSStoppedFrame(context_id=context_id))
            await self.remove_audio_context(context_id)
        self._silent_contexts.discard(context_id)
        await super().on_turn_context_completed()

    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame | None, None]:
        """Converted audio for one sentence, chunk by chunk.

        Args:
            text: One sentence (Pipecat's aggregator splits the LLM's text with the same rules as `speak`).
            context_id: The audio context the frames belong to.

        Yields:
            `TTSAudioRawFrame`s of 16-bit mono PCM at the pipeline's output rate, or one `ErrorFrame` when the
            base engine fails.
        """
        tau = self._tau()
        rate = self._voice.sample_rate
        resampler = (
            soxr.ResampleStream(rate, self.sample_rate, 1, dtype="float32") if rate != self.sample_rate else None
        )
        first = context_id != self._last_context  # the first sentence of an answer
        self._last_context = context_id
        # Each sentence takes a new generation: any older sentence's work still on the thread is stale by now.
        self._generation += 1
        generation = self._generation
        self._running = (context_id, generation)
        chunks: asyncio.Queue = asyncio.Queue()
        emit = _emitter(asyncio.get_running_loop(), chunks)
        if await self._rendered_line(text, tau):  # played from memory at once, not behind the thread's queue
            self._make_sentence(self._voice, text, tau, generation, emit, first)
        else:
            asyncio.get_running_loop().run_in_executor(
                self._executor, self._make_sentence, self._voice, text, tau, generation, emit, first
            )
        produced = False
        await self.start_tts_usage_metrics(text)
        try:
            while (item := await chunks.get()) is not _DONE:
                if isinstance(item, UserError):  # the base engine failed: a rejected key, a server that does not answer
                    yield ErrorFrame(error=f"{self}: {item}")
                    break
                if isinstance(item, BaseException):
                    raise item
                chunk = resampler.resample_chunk(item) if resampler is not None else item
                if len(chunk):
                    produced = True
                    await self.stop_ttfb_metrics()
                    yield TTSAudioRawFrame(pcm16(chunk), self.sample_rate, 1, context_id=context_id)
            if resampler is not None and produced:
                tail = resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
                if len(tail):
                    yield TTSAudioRawFrame(pcm16(tail), self.sample_rate, 1, context_id=context_id)
        finally:
            if self._generation == generation:  # closed early (an interruption): the rest of it is stale
                self._generation += 1
            if self._running == (context_id, generation):
                self._running = None
            if produced:
                self._silent_contexts.discard(context_id)
            else:  # nothing came: there is no first byte to time, and the turn must not wait for one
                self._silent_contexts.add(context_id)
                await self.cancel_ttfb_metrics()

    def _make_sentence(
        self, voice: ClonedVoice, text: str, tau, generation: int, emit: Callable, first: bool = False
    ) -> None:
        """On the worker thread: the sentence's chunks, handed to `emit` as they are made.

        The sentence is spoken unit by unit (`voiceclone.tts.sentences.bound`); the first sentence of an answer starts
        with its first clause when that is short (`quick_start`). A unit that is a fixed line (the greeting, an
        apology, the echo's "You said:") comes from its rendered audio, and is rendered and kept the first
        time; any other is synthesised and converted (`_synthesise`).
        """
        hold = FIRST_AUDIO.hold() if first else None  # the local LLM gives way until this answer is heard

        def emit_audio(item: object) -> None:
            if hold is not None and isinstance(item, np.ndarray) and len(item):
                hold.release()
            emit(item)

        try:
            whole_line = self._lines is not None and self._lines.wants(text)
            units = bound(text, BOT_UNIT_CHARS)
            units = [text] if whole_line else (quick_start(units) if first else units)
            for index, unit in enumerate(units):
                if self._generation != generation:
                    return
                # No silence before an answer's first words, nor where the last unit broke off mid-sentence.
                lead_in = (first and index == 0) or self._mid_sentence
                self._mid_sentence = pause_after(unit) is not None
                if not self._speak_unit(voice, unit, tau, generation, emit_audio, lead_in=lead_in):
                    return
        except BaseException as exc:  # handed to the event loop: UserError is spoken of, anything else raised
            emit(exc)
        finally:
            if hold is not None:
                hold.release()
            emit(_DONE)

    def _speak_unit(
        self, voice: ClonedVoice, unit: str, tau, generation: int, emit: Callable, lead_in: bool = False
    ) -> bool:
        """One unit: from the rendered lines if it is one, else made; False if abandoned on the way.

        `lead_in`: the unit opens an answer or goes on from a unit cut mid-sentence (its leading silence would only
        be a wait).
        """
        line = self._lines is not None and self._lines.wants(unit)
        cached = self._lines.load(voice, unit, tau) if line else None
        if cached is not None:
            step = int(LINE_PIECE_S * voice.sample_rate)
            for start in range(0, len(cached), step):
                emit(cached[start : start + step])
            return True
        made = self._synthesise(voice, unit, tau, generation, emit, keep=line, lead_in=lead_in)
        if made is None:
            return False
        if line and made:
            self._lines.store(voice, unit, np.concatenate(made), tau)
        return True

    def _synthesise(
        self,
        voice: ClonedVoice,
        unit: str,
        tau,
        generation: int,
        emit: Callable,
        keep: bool = False,
        lead_in: bool = False,
    ) -> list | None:
        """Base synthesis of one unit, then its conversion chunk by chunk, checking the generation between steps.

        The base voice's silence is cut before an answer's first words (`lead_in`) and after words that do not
        end a sentence (an early start or a long sentence's part), down to the pause their punctuation wants.

        Returns:
            The chunks when `keep` (else an empty list), or None if the sentence was abandoned on the way.
        """
        made = []
        base = voice.base_audio(unit, lead_in)
        chunks = voice.convert(base, voice.engine.sample_rate, tau, self._chunk_frames)
        while True:
            if self._generation != generation:
                return None
            chunk = next(chunks, None)  # one conversion step
            if chunk is None:
                return made
            if keep:
                made.append(chunk)
            emit(chunk)


def _emitter(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue) -> Callable[[object], None]:
    """A thread-safe `put` into `queue` that ignores a loop already closed (the bot is shutting down)."""

    def emit(item: object) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:
            pass

    return emit
