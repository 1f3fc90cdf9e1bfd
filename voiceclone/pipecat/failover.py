"""Several engines for one job (`stt: [...]`, `llm: [...]` in a config): Pipecat's `ServiceSwitcher`, failing over.

Pipecat's `ServiceSwitcherStrategyFailover` moves on only when a service declares itself unusable (a rejected key,
reconnection given up). A live call cannot wait for that: a lost connection or a server error during a turn is
enough to move to the next engine, so `FailoverStrategy` switches on any error that is not the application's own.
`FailoverSwitcher` then says so in one log line and, for an LLM, asks the new one the question the failed one
left unanswered, so the turn is not lost.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import httpx
from loguru import logger
from pipecat.frames.frames import ErrorFrame, Frame, LLMContextFrame, LLMTextFrame, TTSSpeakFrame
from pipecat.pipeline.service_switcher import ServiceSwitcher, ServiceSwitcherStrategyFailover
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.openai.llm import OpenAILLMService
from pipecat.utils.errors import ErrorCategory

from voiceclone.pipecat.lines import LOST_TURN


class FailoverStrategy(ServiceSwitcherStrategyFailover):
    """Fail over to the next usable engine when the active one errors, unless the error is the application's."""

    def __init__(self, services: list[FrameProcessor]):
        """Args: services: the engines, in failover order (called by `ServiceSwitcher`)."""
        super().__init__(services)
        self.last_failure: tuple[FrameProcessor, str] | None = None

    async def handle_error(self, error: ErrorFrame) -> FrameProcessor | None:
        """Switch away from the active engine on a lost connection, a server error, a timeout, a rejection.

        Args:
            error: An error the active engine pushed.

        Returns:
            The engine now active, or None when there was no reason or nowhere to switch.
        """
        failed = error.processor or self.active_service
        if error.category == ErrorCategory.APPLICATION:  # a tool handler's fault, not the engine's
            return None
        self.last_failure = (failed, error.error)
        if not failed.is_usable:
            return await super().handle_error(error)
        start = self.services.index(self.active_service)
        for offset in range(1, len(self.services)):
            candidate = self.services[(start + offset) % len(self.services)]
            if candidate.is_usable:
                return await self._set_active_if_available(candidate)
        return None


class FailoverSwitcher(ServiceSwitcher):
    """A `ServiceSwitcher` over `FailoverStrategy` that logs each switch and, for LLMs, replays a lost question."""

    def __init__(
        self,
        services: list[FrameProcessor],
        kind: str,
        replay_questions: bool = False,
        on_switch: Callable[[FrameProcessor], Awaitable[None]] | None = None,
    ):
        """Switch between `services` (in failover order).

        Args:
            services: The engines, the preferred first.
            kind: "stt" or "llm", for the log line.
            replay_questions: Ask the new engine the question the failed one was answering when it failed without
                answering (for LLMs).
            on_switch: Awaited with the new engine after each switch (the bot apologises for a lost turn).
        """
        super().__init__(services, strategy_type=FailoverStrategy)
        self.kind = kind
        self.switches: list[tuple[float, str, str]] = []  # (time.monotonic(), from, to), for tests and reports
        self._replay = replay_questions
        self._on_switch = on_switch
        self._question: LLMContextFrame | None = None
        self._answered = True

        @self.strategy.event_handler("on_service_switched")
        async def _switched(_strategy, service):
            await self._after_switch(service)

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Remember the question in flight (an LLM's context) before it goes to the active engine."""
        if isinstance(frame, LLMContextFrame) and direction == FrameDirection.DOWNSTREAM:
            self._question, self._answered = frame, False
        await super().process_frame(frame, direction)

    async def push_frame(self, frame: Frame, direction: FrameDirection = FrameDirection.DOWNSTREAM):
        """Note when the question has started to be answered (a replay would then repeat it)."""
        if isinstance(frame, LLMTextFrame):
            self._answered = True
        await super().push_frame(frame, direction)

    async def _after_switch(self, service: FrameProcessor) -> None:
        failure = self.strategy.last_failure
        failed, why = failure if failure is not None else (None, "switched")
        name = failed.name if failed is not None else "?"
        self.switches.append((time.monotonic(), name, service.name))
        logger.warning(f"{self.kind}: {name} failed ({_brief(why)}); now using {service.name}")
        if self._replay and self._question is not None and not self._answered:
            # A new frame (the parallel pipeline drops a frame id it has seen) with the same conversation.
            await self.queue_frame(LLMContextFrame(context=self._question.context))
        if self._on_switch is not None:
            await self._on_switch(service)


def _brief(message: str) -> str:
    first = str(message).splitlines()[0] if message else "error"
    return first if len(first) <= 160 else first[:157] + "..."


# With a backup to go to, an LLM should fail fast instead of retrying (the OpenAI client retries twice, with
# back-off) or waiting out a server that does not answer (its default timeout is 10 minutes).
FAILOVER_CONNECT_TIMEOUT_S = 3.0
FAILOVER_READ_TIMEOUT_S = 8.0


class FailFastOpenAILLMService(OpenAILLMService):
    """An `OpenAILLMService` whose client neither retries nor waits long: the failover is its retry."""

    def create_client(self, *args, **client_kwargs):
        timeout = httpx.Timeout(FAILOVER_READ_TIMEOUT_S, connect=FAILOVER_CONNECT_TIMEOUT_S)
        return super().create_client(*args, **client_kwargs).with_options(max_retries=0, timeout=timeout)


def fail_fast_openai_llm(**kwargs):
    """An `OpenAILLMService` whose client neither retries nor waits long: the failover is its retry.

    Args:
        kwargs: `OpenAILLMService`'s arguments.

    Returns:
        The service.
    """
    return FailFastOpenAILLMService(**kwargs)


class LostTurns:
    """A short spoken apology (a cached line) for a user turn whose words were lost when the STT failed over."""

    def __init__(self, user_aggregator, line: str | None = None):
        """Watch the user's turns on `user_aggregator` (an `LLMUserAggregator`).

        Args:
            user_aggregator: Where turns start and stop; the apology is pushed from it, towards the TTS.
            line: What to say; None: `lines.LOST_TURN`.
        """
        self.line = line or LOST_TURN
        self._in_turn = False
        self._lost = False

        @user_aggregator.event_handler("on_user_turn_started")
        async def _started(_aggregator, _strategy):
            self._in_turn = True

        @user_aggregator.event_handler("on_user_turn_stopped")
        async def _stopped(aggregator, _strategy, message):
            lost, self._lost, self._in_turn = self._lost, False, False
            if lost and not message.content:  # the turn ended with no words: they went down with the engine
                await aggregator.push_frame(TTSSpeakFrame(self.line, append_to_context=False))

    async def stt_switched(self, _service) -> None:
        """Called after the STT failed over: a turn in progress may have lost its words."""
        self._lost = self._in_turn
