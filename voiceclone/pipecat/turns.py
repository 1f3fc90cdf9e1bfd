"""When has the user finished? The words decide: a finished sentence ends the turn at once, one left hanging
("I would like to ...") gets a longer pause to go on.

Why not Pipecat's default, the smart-turn model (`LocalSmartTurnAnalyzerV3`)? It judges the audio once, when the
VAD stops; a turn it calls incomplete then ends only after `SmartTurnParams.stop_secs` of silence, 3 s by default:
that is the "waited about 3 s after a finished sentence". Measured on Piper and espeak-ng speech
(`benchmarks/bot.py`), it called a third of finished questions incomplete (3 s) and half of the sentences cut by a
pause ("Could you tell me ... when the next train leaves?") complete (a cut-off). The transcript, which the turn
has to wait for anyway, tells the two apart far better: a sentence that ends on "to", "the", "and", "whether" or
"..." is not finished; a short one (under `min_words`) may not be either.

Speculation: the speech-to-text transcribes from the moment the speech pauses and says so at once (an
`EagerTranscriptionFrame`, ~0.1 s before the VAD's stop). When that text already reads as a finished sentence,
the strategy starts the answer then (Pipecat's speculative inference: the LLM service holds what it makes until
the turn ends), and the turn's end confirms it if the final transcript is the same words, or withdraws it. So the
LLM's first tokens are made while the VAD waits out its `stop_secs`, not after.
"""

from __future__ import annotations

import asyncio
import re
import time

from loguru import logger
from pipecat.frames.frames import (
    EagerEndOfTurnCancelFrame,
    EagerTranscriptionFrame,
    Frame,
    STTMetadataFrame,
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.turns.types import ProcessFrameResult, UserTurnSpeculation
from pipecat.turns.user_stop.base_user_turn_stop_strategy import BaseUserTurnStopStrategy
from pipecat.turns.user_stop.eager_match_policy import NormalizedMatch

# Words a finished English sentence rarely ends on: articles, prepositions, conjunctions, the verb "to be" and
# modals, possessives, subject pronouns that need a verb, fillers, and verbs that want what follows them ("I
# forgot where I put ...", "we are planning ..."). (Not "that", "do", "can", "go": "Can you do that?")
_UNFINISHED = """
    a an the
    to of for with in on at from about into onto by as like than over under after before between through
    without within towards toward per via
    and or but so because if whether which whose although though unless while whereas nor
    is are was were am be been being would could should shall may might must
    my your our their his her its
    i we they he she
    um uh er erm hmm
    need needs want wants going gonna wanna gotta really very quite
    put get take make give bring send buy find tell ask show let
    planning trying thinking wondering hoping looking meaning wanting
"""
UNFINISHED_WORDS = frozenset(_UNFINISHED.split())
FINAL_PUNCTUATION = (".", "?", "!")
RESUME_MARGIN_S = 0.06  # the VAD works on 32 ms frames and smooths its confidence


def sentence_finished(text: str, min_words: int = 5) -> bool:
    """Whether a turn's transcript reads as a finished sentence.

    Args:
        text: Everything the user said in the turn so far.
        min_words: Fewer words than this are not enough to tell: "Could you tell me?" is as often the start
            of a longer question.

    Returns:
        True when the text ends with . ? or ! (not "..."), on a word a sentence can end on, and is long enough.
    """
    text = text.strip()
    if not text.endswith(FINAL_PUNCTUATION) or text.endswith(".."):
        return False
    words = [w for w in (re.sub(r"[^\w']", "", w).lower() for w in text.split()) if w]
    return len(words) >= min_words and words[-1] not in UNFINISHED_WORDS


class SentenceEndUserTurnStopStrategy(BaseUserTurnStopStrategy):
    """End the user's turn when the transcript makes a finished sentence, or after `max_pause_s` of silence.

    After the VAD's stop (its `stop_secs` after the last speech), the strategy waits for the speech-to-text's
    final transcript of what was said (a streaming STT may have given its words already: after its announced
    p99 latency, those are judged), then:

    - a finished sentence (`sentence_finished`) ends the turn at once;
    - anything else waits for `max_pause_s` of silence since the speech stopped (a pause for thought), plus
      what the VAD needs to notice speech again, unless the user speaks again, which continues the same turn.

    A transcript that does not come (a noise, a slow STT) is waited for up to `transcript_timeout_s`.

    With `speculate`, an eager transcript that reads as a finished sentence starts the answer before the turn
    ends; the end keeps it when the final words are the same (case and punctuation aside), and withdraws it
    when they differ, when the caller speaks again, or when the turn ends some other way.
    """

    def __init__(
        self,
        *,
        max_pause_s: float = 1.0,
        min_words: int = 5,
        transcript_timeout_s: float = 2.0,
        speculate: bool = False,
        **kwargs,
    ):
        """Args: max_pause_s: silence that ends any turn; min_words: see `sentence_finished`;
        transcript_timeout_s: the longest wait for a transcript after the VAD's stop; speculate: answer an eager
        transcript before the turn ends (only for an LLM stage that holds a speculative answer back)."""
        super().__init__(**kwargs)
        self._max_pause_s = max_pause_s
        self._min_words = min_words
        self._transcript_timeout_s = transcript_timeout_s
        self._text = ""
        self._speaking = False
        self._heard = False  # a final transcript came since the VAD last stopped
        self._paused_out = False  # the silence reached `max_pause_s`
        self._silent_since: float | None = None  # wall-clock time the user's speech stopped
        self._start_secs = 0.2  # the VAD's: speech that resumes is only reported this much later
        self._stt_wait_s = 1.0  # the STT's p99 time to its final transcript (STTMetadataFrame), from speech end
        self._timer: asyncio.Task | None = None
        self._speculate = speculate
        self._speculation: UserTurnSpeculation | None = None  # the answer started before the turn's end
        self._same_words = NormalizedMatch()

    async def handle_user_turn_started(self):
        """A new turn: forget the last one's words (whether the user is speaking now stays as the VAD said)."""
        self._text, self._heard, self._paused_out = "", False, False
        await self._cancel_timer()
        await self._withdraw()

    async def handle_user_turn_stopped(self):
        """The turn is over."""
        self._text, self._heard, self._paused_out, self._silent_since = "", False, False, None
        await self._cancel_timer()
        await self._withdraw()  # ended by something else (the stop watchdog): its speculation is void

    async def cleanup(self):
        """Stop the timer."""
        await super().cleanup()
        await self._cancel_timer()

    async def process_frame(self, frame: Frame) -> ProcessFrameResult:
        """Follow the VAD and the final transcripts.

        Args:
            frame: A frame the user aggregator sees.

        Returns:
            CONTINUE, so other strategies see it too.
        """
        await super().process_frame(frame)
        if isinstance(frame, STTMetadataFrame):
            self._stt_wait_s = frame.ttfs_p99_latency
        elif isinstance(frame, VADUserStartedSpeakingFrame):
            self._speaking, self._heard, self._paused_out, self._silent_since = True, False, False, None
            self._start_secs = frame.start_secs
            await self._cancel_timer()
            await self._withdraw()  # the caller went on after the VAD's stop: the turn is longer
        elif isinstance(frame, VADUserStoppedSpeakingFrame):
            self._speaking, self._heard, self._paused_out = False, False, False
            self._silent_since = frame.timestamp - frame.stop_secs
            await self._arm(frame.timestamp + max(0.0, self._stt_wait_s - frame.stop_secs))
        elif isinstance(frame, TranscriptionFrame):
            await self._transcript(frame)
        elif isinstance(frame, EagerTranscriptionFrame):
            await self._eager(frame)
        elif isinstance(frame, EagerEndOfTurnCancelFrame):
            self._speculation = None  # withdrawn by whoever sent it; the frame itself reaches the LLM
        return ProcessFrameResult.CONTINUE

    async def _eager(self, frame: EagerTranscriptionFrame) -> None:
        """Start answering the words said up to a pause, if they read as a finished turn."""
        if not self._speculate or self._heard:  # (the final transcript came first: the turn is being decided)
            return
        text = f"{self._text} {frame.text}".strip()
        if not sentence_finished(text, self._min_words):
            return  # the turn will wait for more: starting now would most likely be wasted
        await self._withdraw()
        self._speculation = UserTurnSpeculation(text=text)
        logger.debug(f"{self}: answering [{text}] ahead of the turn's end")
        await self.trigger_user_turn_inference_triggered(speculation=self._speculation)

    async def _withdraw(self) -> None:
        speculation, self._speculation = self._speculation, None
        if speculation is not None:
            logger.debug(f"{self}: speculative answer to [{speculation.text}] withdrawn")
            await self.trigger_user_turn_speculation_cancelled()

    async def _transcript(self, frame: TranscriptionFrame) -> None:
        self._text = f"{self._text} {frame.text}".strip()
        if not frame.finalized:  # more of it may be on the way (a streaming STT's partial final)
            return
        self._heard = True
        if self._speaking:
            return
        if self._silent_since is None:  # a transcript with no VAD stop: time the pause from now
            self._silent_since = time.time()
            await self._arm(self._silent_since)
        if self._paused_out or self._finished():
            await self._end()  # a finished sentence, or the pause ran out while the transcript was on its way

    def _finished(self) -> bool:
        finished = sentence_finished(self._text, self._min_words)
        logger.debug(f"{self}: heard [{self._text}]: {'finished' if finished else 'not finished'}")
        return finished

    def _pause_deadline(self) -> float:
        """When a pause becomes the end: `max_pause_s` of silence, plus the time the VAD takes to report that
        speech resumed (its `start_secs`, and a frame or two), so that a pause of `max_pause_s` is survived."""
        return self._silent_since + self._max_pause_s + self._start_secs + RESUME_MARGIN_S

    async def _arm(self, stt_deadline: float) -> None:
        await self._cancel_timer()
        self._timer = self.task_manager.create_task(self._after_speech(stt_deadline), f"{self}::pause")

    async def _after_speech(self, stt_deadline: float) -> None:
        """The pause, in three steps: the STT's time, the pause allowed, and a late transcript's grace."""
        try:
            await _sleep_until(stt_deadline)
            if not self._heard and self._text and self._finished():  # a streaming STT's words came already
                self._timer = None
                await self._end()
                return
            await _sleep_until(self._pause_deadline())
            self._paused_out = True
            if not self._heard:  # the transcript is late: give it a while longer, it is what the turn is about
                await _sleep_until(self._silent_since + self._transcript_timeout_s)
        except asyncio.CancelledError:
            return
        self._timer = None
        if not self._speaking:
            await self._end()

    async def _end(self) -> None:
        await self._cancel_timer()
        speculation = self._speculation
        if speculation is not None and self._same_words.matches(speculation.text, self._text):
            self._speculation = None
            await self.trigger_user_turn_finalized(confirms_speculation=True)  # its answer is on its way
            return
        if speculation is not None:
            logger.debug(f"{self}: said [{self._text}], not [{speculation.text}]: answering anew")
        await self._withdraw()
        await self.trigger_user_turn_stopped()

    async def _cancel_timer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None and timer is not asyncio.current_task():
            await self.task_manager.cancel_task(timer)


async def _sleep_until(deadline: float) -> None:
    """Sleep until a wall-clock time (the VAD's frames carry `time.time()` timestamps)."""
    await asyncio.sleep(max(0.0, deadline - time.time()))
