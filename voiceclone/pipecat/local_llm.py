"""`LocalLLMService`: the local LLM (`voiceclone.llm.LocalLLM`) as a Pipecat LLM service.

Each user turn (an `LLMContextFrame`) is answered like Pipecat's OpenAI service answers it: a start frame, the
reply streamed as `LLMTextFrame`s while llama.cpp generates it (on a thread; the TTS gathers them into
sentences), an end frame, and TTFB / processing / token-usage metrics. An interruption stops generation before
the next token. The spoken voice commands ("talk like NAME", "list voices") are answered as the echo answers
them, without the model: a model this small cannot call tools.

A reply that stops coming (llama.cpp hung, or another call's reply holding the model too long) is given up after
`reply_timeout_s`: an error frame (a failover list moves on) and, when nothing of the answer was said, the cached
"sorry" line, so the call goes on.
"""

from __future__ import annotations

import asyncio
import threading

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
        self._cancel: threading.Event | None = None  # the reply being generated, if any

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
        if self._cancel is not None:
            self._cancel.set()

    async def _answer(self, context: LLMContext) -> None:
        """One response: a voice command's answer, or the model's reply streamed."""
        params = await self.get_llm_adapter().get_llm_invocation_params(
            context, system_instruction=self._settings.system_instruction, convert_developer_to_user=False
        )
        messages = list(params["messages"])
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
        cancel = self._cancel = threading.Event()
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
            if self._cancel is cancel:
                self._cancel = None
            if reply.prompt_tokens:
                usage = LLMTokenUsage(
                    prompt_tokens=reply.prompt_tokens,
                    completion_tokens=reply.completion_tokens,
                    total_tokens=reply.prompt_tokens + reply.completion_tokens,
                )
                await self.start_llm_usage_metrics(usage)
