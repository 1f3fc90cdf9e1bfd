"""`LocalLLMService`: the local LLM (`voiceclone.llm.LocalLLM`) as a Pipecat LLM service.

Each user turn (an `LLMContextFrame`) is answered like Pipecat's OpenAI service answers it: a start frame, the
reply streamed as `LLMTextFrame`s while llama.cpp generates it (on a thread; the TTS gathers them into
sentences), an end frame, and TTFB / processing / token-usage metrics. An interruption stops generation before
the next token. The spoken voice commands ("talk like NAME", "list voices") are answered as the echo answers
them, without the model: a model this small cannot call tools.

Given the call's `TurnWords`, it reads the caller's words so far into the model's context while they are still
speaking (`LocalLLM.read_ahead`), so that the turn's reply reads only its last words before its first token.

A reply that stops coming (llama.cpp hung, or another call's reply holding the model too long) is given up after
`reply_timeout_s`: an error frame (a failover list moves on) and, when nothing of the answer was said, the cached
"sorry" line, so the call goes on.
"""

from __future__ import annotations

import asyncio
import threading

from loguru import logger
from pipecat.frames.frames import (
    EagerEndOfTurnCancelFrame,
    Frame,
    InterruptionFrame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    TTSSpeakFrame,
)
from pipecat.metrics.metrics import LLMTokenUsage
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.llm_service import LLMService
from pipecat.services.settings import LLMSettings

from voiceclone.llm.engine import LocalLLM
from voiceclone.pipecat.commands import command_reply, last_user_text, push_answer
from voiceclone.pipecat.lines import LOST_TURN
from voiceclone.pipecat.tools import VoiceChoice
from voiceclone.pipecat.turn_words import TurnWords

_DONE = object()  # the generation thread's last item
# The longest wait for the next piece of a reply, the first included (which may wait for another call's reply).
REPLY_TIMEOUT_S = 20.0


class ReplyStalled(Exception):
    """No piece of the reply came for `reply_timeout_s`; `said` pieces had been pushed before."""

    def __init__(self, timeout_s: float, said: int):
        super().__init__(f"no reply for {timeout_s:g} s; generation stopped")
        self.said = said


class LocalLLMService(LLMService):
    """A GGUF model run in this process by llama.cpp, as an LLM service; the model is loaded once and shared."""

    def __init__(
        self,
        llm: LocalLLM,
        *,
        system_prompt: str,
        temperature: float = 0.3,
        max_tokens: int = 96,
        voices: VoiceChoice | None = None,
        reply_timeout_s: float = REPLY_TIMEOUT_S,
        **kwargs,
    ):
        """Args: llm: the loaded model; system_prompt, temperature, max_tokens: how it answers; voices: the call's
        voices, for the spoken voice commands (None: no commands); reply_timeout_s: the longest wait for the next
        piece of a reply before it is given up."""
        settings = LLMSettings(
            model=llm.name,
            system_instruction=system_prompt,
            temperature=temperature,
            max_tokens=max_tokens,
            top_p=None,
            top_k=None,
            frequency_penalty=None,
            presence_penalty=None,
            seed=None,
            filter_incomplete_user_turns=False,
            user_turn_completion_config=None,
            extra={},
        )
        super().__init__(settings=settings, **kwargs)
        self._llm = llm
        self._voices = voices
        self._reply_timeout_s = reply_timeout_s
        self._reply_stop: threading.Event | None = None  # the reply being generated, if any
        self._context: LLMContext | None = None  # the call's conversation, for reading the caller's words ahead
        self._reading: threading.Event | None = None  # set to stop the reading ahead under way, if any

    def read_ahead_from(self, words: TurnWords, context: LLMContext) -> None:
        """Read the caller's words so far (from `words`) into the model while they speak; `context`: the call's."""
        self._context = context
        words.attach(self._read_ahead, self._stop_reading_ahead, self._can_read_ahead)

    def _can_read_ahead(self) -> bool:
        """Nothing of this call's is running on the model, and no other call's reply is (the cores are theirs)."""
        return self._reply_stop is None and self._reading is None and self._llm.is_idle()

    def _read_ahead(self, words: str) -> None:
        if self._can_read_ahead():
            stop = self._reading = threading.Event()
            self.create_task(self._read_ahead_task(words, stop), "read-ahead")

    def _stop_reading_ahead(self) -> None:
        if self._reading is not None:
            self._reading.set()

    async def _read_ahead_task(self, words: str, stop: threading.Event) -> None:
        try:
            messages = await self._messages(self._context)
            messages.append({"role": "user", "content": words})
            count = await asyncio.to_thread(
                self._llm.read_ahead, messages, int(self._settings.max_tokens), id(self), stop
            )
            logger.debug(f"local LLM: read {count} tokens ahead ({words!r})")
        finally:
            stop.set()  # (cancelled: the thread stops after its batch)
            if self._reading is stop:
                self._reading = None

    async def _messages(self, context: LLMContext) -> list[dict]:
        """The context's messages as the model is given them, the system prompt first."""
        params = await self.get_llm_adapter().get_llm_invocation_params(
            context, system_instruction=self._settings.system_instruction, convert_developer_to_user=False
        )
        return list(params["messages"])

    async def cleanup(self):
        """The call is over: its context on the shared model may go to the next caller."""
        await super().cleanup()
        self._stop_reading_ahead()
        self._llm.forget(id(self))

    def can_generate_metrics(self) -> bool:
        """TTFB, processing time and token usage are reported."""
        return True

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Answer context frames; pass everything else on."""
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMContextFrame):
            await self._answer(frame.context)
        else:
            await self.push_frame(frame, direction)

    async def _handle_interruptions(self, frame: InterruptionFrame):
        """Stop the reply being generated (its task is cancelled too; this also covers a reply not yet awaited)."""
        await super()._handle_interruptions(frame)
        if self._reply_stop is not None:
            self._reply_stop.set()

    async def _answer(self, context: LLMContext) -> None:
        """One response: a voice command's answer, or the model's reply streamed."""
        messages = await self._messages(context)
        switch, reply = command_reply(self._voices, last_user_text(messages))
        if reply is not None and self._speculation_gate.is_speculating:
            # A voice command changes the call at once: no gate could undo it if the turn went on. Withdraw the
            # speculation (as Pipecat does for a tool call); the turn's end answers it.
            await self.broadcast_frame(EagerEndOfTurnCancelFrame)
            return
        if reply is not None:
            await push_answer(self, reply, switch)
            return
        await self.push_frame(LLMFullResponseStartFrame())
        await self.start_processing_metrics()
        silent = False
        try:
            await self._stream(messages)
        except ReplyStalled as exc:
            silent = exc.said == 0
            await self.push_error(error_msg=f"local LLM: {exc}", exception=exc)
        except Exception as exc:  # llama.cpp failing mid-call: an error frame (a failover moves to the backup)
            await self.push_error(error_msg=f"local LLM: {exc}", exception=exc)
        finally:
            await self.stop_processing_metrics()
            await self.push_frame(LLMFullResponseEndFrame())
        if silent:  # the caller asked and heard nothing: say so (a cached line), and the next turn goes on
            await self.push_frame(TTSSpeakFrame(LOST_TURN, append_to_context=False))

    async def _stream(self, messages: list[dict]) -> None:
        """Generate on a thread, handing each piece to the event loop as it comes; cancelled, stop the thread."""
        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue = asyncio.Queue()
        cancel = self._reply_stop = threading.Event()
        self._stop_reading_ahead()  # (the reply waits at most one small batch for it)
        s = self._settings
        reply = self._llm.stream(messages, float(s.temperature), int(s.max_tokens), cancel, owner=id(self))

        def put(item) -> None:
            try:
                loop.call_soon_threadsafe(pieces.put_nowait, item)
            except RuntimeError:  # the loop has closed (the bot is stopping): nobody is listening
                cancel.set()

        def generate() -> None:
            try:
                for piece in reply:
                    put(piece)
                put(_DONE)
            except Exception as exc:
                put(exc)

        await self.start_ttfb_metrics()
        threading.Thread(target=generate, name="local-llm", daemon=True).start()
        said = 0
        try:
            while True:
                try:
                    item = await asyncio.wait_for(pieces.get(), self._reply_timeout_s)
                except TimeoutError:
                    raise ReplyStalled(self._reply_timeout_s, said) from None
                if item is _DONE:
                    break
                if isinstance(item, Exception):
                    raise item
                if not said:
                    await self.stop_ttfb_metrics()
                said += 1
                await self._push_llm_text(item)
        finally:
            cancel.set()  # an interruption cancels this task: the thread stops before its next token
            if self._reply_stop is cancel:
                self._reply_stop = None
            if reply.prompt_tokens:
                usage = LLMTokenUsage(
                    prompt_tokens=reply.prompt_tokens,
                    completion_tokens=reply.completion_tokens,
                    total_tokens=reply.prompt_tokens + reply.completion_tokens,
                )
                await self.start_llm_usage_metrics(usage)
