"""Voice-to-voice latency you can see: one log line per turn, a summary when the call ends, the same to the browser.

Built on Pipecat's own `UserBotLatencyObserver`: it measures from the moment the user stopped speaking (the VAD's
stop, less its `stop_secs`) to the bot's first audio leaving the transport, and names every part of that interval
from the frames and the services' TTFB metrics. That start is the VAD's estimate, and Silero's confidence falls
about 0.1 s after the last word: a turn here starts where the caller's audio last sounded as it reached the bot (its
last sample above `SPEECH_LEVEL`, as the browser page measures: `HeardSpeechEnd`), so the figure is nearer what the
caller hears. The parts are grouped the way a person tuning the bot thinks of them:

- end heard: from the last sound of the speech to the VAD's estimate of it,
- turn end: the VAD's silence and the turn strategy deciding the user has finished,
- STT: from the VAD's stop to the final transcript,
- LLM: from the request to the first text (and any function calls),
- TTS: from the first text to the first audio (sentence aggregation, base synthesis and the first converted chunk),
- other: frame hops and the output transport.

The browser gets each turn as an RTVI `server-message` (see `LatencyReport.message`).
"""

from __future__ import annotations

import statistics
import time
import weakref
from dataclasses import dataclass, field

import numpy as np
from loguru import logger
from pipecat.frames.frames import InputAudioRawFrame, VADUserStoppedSpeakingFrame
from pipecat.observers.base_observer import FramePushed
from pipecat.observers.user_bot_latency_observer import UserBotLatencyObserver

# Contribution keys of Pipecat's `LatencyBreakdown`, grouped into the parts we report.
PARTS: dict[str, tuple[str, ...]] = {
    "turn_end": ("endpointing_wait", "turn_detection", "waiting_for_user", "turn_completion"),
    "stt": ("transcription",),
    "llm": ("llm_inference", "llm_tool_call", "function_handler", "awaiting_speakable_text", "first_request"),
    "tts": ("sentence_aggregation", "speech_synthesis"),
}
LABELS = {
    "heard": "end heard",
    "turn_end": "turn end",
    "stt": "STT",
    "llm": "LLM first token",
    "tts": "TTS first audio",
    "other": "other",
}
MESSAGE_TYPE = "voiceclone-latency"
SPEECH_LEVEL = 0.02  # a sample above this is speech (as the browser page's SPEECH_LEVEL)
# The last sound counts only this long before the VAD's estimate (a sound further back belongs to another moment).
MAX_HEARD_LAG_S = 0.5


class HeardSpeechEnd:
    """When the caller's speech last sounded, as its audio reached the bot: the last sample above `SPEECH_LEVEL`.

    Read at each `VADUserStoppedSpeakingFrame` (`at_vad_stop`), so a sound after the turn's end does not move it.
    Times are wall-clock (`time.time()`, as Pipecat's latency observer uses), taken when the frame is observed.
    Fed by the call's latency observer (`_LatencyObserver`): every observer has a queue that every frame of every
    hop goes through, so this rides on the one already there.
    """

    def __init__(self, clock=time.time):
        self._clock = clock
        self._last_sound: float | None = None
        self.at_vad_stop: float | None = None  # the last sound before the VAD's latest stop

    def observe(self, data: FramePushed) -> None:
        """Note loud input audio; keep its last moment when the VAD stops."""
        frame = data.frame
        if not data.first_push:
            return
        if isinstance(frame, InputAudioRawFrame):
            self.heard(frame.audio, frame.sample_rate, frame.num_channels)
        elif isinstance(frame, VADUserStoppedSpeakingFrame):
            self.at_vad_stop = self._last_sound

    def heard(self, audio: bytes, sample_rate: int, channels: int = 1) -> None:
        """16-bit audio that has just arrived: if any of it is loud, its last loud sample is the latest sound."""
        samples = np.frombuffer(audio, dtype=np.int16)
        loud = np.flatnonzero(np.abs(samples) > SPEECH_LEVEL * 32768)
        if len(loud):
            after = (len(samples) - 1 - int(loud[-1])) // max(1, channels)  # samples that came after it
            self._last_sound = self._clock() - after / sample_rate

    def lag(self, vad_estimate: float | None) -> float:
        """Seconds from the last sound to the VAD's estimate of the speech end (0 when unknown or implausible)."""
        if vad_estimate is None or self.at_vad_stop is None:
            return 0.0
        lag = vad_estimate - self.at_vad_stop
        return lag if 0.0 < lag <= MAX_HEARD_LAG_S else 0.0


class _LatencyObserver(UserBotLatencyObserver):
    """Pipecat's latency observer, also showing every frame to the call's `HeardSpeechEnd`."""

    def __init__(self, heard: HeardSpeechEnd):
        super().__init__()
        self._heard = heard

    async def on_push_frame(self, data: FramePushed):
        self._heard.observe(data)
        await super().on_push_frame(data)


@dataclass
class TurnLatency:
    """One turn: its voice-to-voice latency and where it went, in seconds."""

    number: int
    total_s: float
    parts: dict[str, float]
    ttfb: dict[str, float] = field(default_factory=dict)  # service name -> its time to first byte

    def line(self) -> str:
        """The log line: `turn 3: 712 ms voice to voice (end heard 100, turn end 200, STT 180, ...)`."""
        parts = ", ".join(f"{LABELS[k]} {v * 1000:.0f}" for k, v in self.parts.items() if v >= 0.0005)
        return f"turn {self.number}: {self.total_s * 1000:.0f} ms voice to voice ({parts} ms)"


def turn_from_breakdown(number: int, breakdown, heard_lag_s: float = 0.0) -> TurnLatency | None:
    """Our grouping of one of Pipecat's `LatencyBreakdown`s; None for the greeting (not a user turn).

    Args:
        number: The turn's number in the call, from 1.
        breakdown: What `UserBotLatencyObserver` reported in `on_latency_breakdown`.
        heard_lag_s: How long before the VAD's estimate of the speech end its last sound came (`HeardSpeechEnd`):
            added in front, as the "heard" part.

    Returns:
        The turn, or None when the breakdown is not measured from the user's silence.
    """
    if breakdown.user_turn_start_time is None or not breakdown.contributions:
        return None
    parts = {"heard": heard_lag_s} | dict.fromkeys(PARTS, 0.0) | {"other": 0.0}
    for contribution in breakdown.contributions:
        group = next((name for name, keys in PARTS.items() if contribution.key in keys), "other")
        parts[group] += contribution.duration_secs
    ttfb: dict[str, float] = {}
    for measured in breakdown.ttfb:
        ttfb.setdefault(measured.processor, measured.duration_secs)  # the first per service is the one that waited
    return TurnLatency(number, heard_lag_s + breakdown.total_secs, parts, ttfb)


@dataclass
class LatencyReport:
    """The turns of one call; logs each, sends each to the browser, and sums the call up at its end."""

    turns: list[TurnLatency] = field(default_factory=list)
    send: object = None  # an async callable given the browser message, or None without RTVI
    heard: HeardSpeechEnd | None = None  # where the speech last sounded; None: from the VAD's estimate

    async def add(self, breakdown) -> TurnLatency | None:
        """Record, log and send one breakdown (a greeting is skipped)."""
        lag = self.heard.lag(breakdown.user_turn_start_time) if self.heard is not None else 0.0
        turn = turn_from_breakdown(len(self.turns) + 1, breakdown, lag)
        if turn is None:
            return None
        self.turns.append(turn)
        logger.info(turn.line())
        if self.send is not None:
            try:
                await self.send(self.message(turn))
            except Exception as exc:  # the page went away: the log line is what matters
                logger.debug(f"latency message not sent: {exc}")
        return turn

    def message(self, turn: TurnLatency) -> dict:
        """The RTVI `server-message` data for one turn; all times are whole milliseconds.

        `{"type": "voiceclone-latency", "turn": 3, "total_ms": 712,
          "parts_ms": {"heard": 100, "turn_end": 200, "stt": 180, "llm": 5, "tts": 190, "other": 37},
          "ttfb_ms": {"SharedWhisperSTTService#0": 170, ...},
          "median_ms": 640, "worst_ms": 900, "turns": 3}`
        """
        median, worst = self.median_and_worst()
        return {
            "type": MESSAGE_TYPE,
            "turn": turn.number,
            "total_ms": _ms(turn.total_s),
            "parts_ms": {k: _ms(v) for k, v in turn.parts.items()},
            "ttfb_ms": {k: _ms(v) for k, v in turn.ttfb.items()},
            "median_ms": _ms(median),
            "worst_ms": _ms(worst),
            "turns": len(self.turns),
        }

    def median_and_worst(self) -> tuple[float, float]:
        """Median and worst voice-to-voice latency so far, in seconds (0 before the first turn)."""
        totals = [t.total_s for t in self.turns]
        return (statistics.median(totals), max(totals)) if totals else (0.0, 0.0)

    def summary(self) -> str | None:
        """The line printed when the call ends, or None if no turn was measured."""
        if not self.turns:
            return None
        median, worst = self.median_and_worst()
        return (
            f"voice-to-voice latency over {len(self.turns)} turn{'s' if len(self.turns) > 1 else ''}: "
            f"median {median * 1000:.0f} ms, worst {worst * 1000:.0f} ms"
        )


_REPORTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def track_latency(worker) -> LatencyReport:
    """Attach Pipecat's latency observer to a worker (before it runs); its turns go to a `LatencyReport`.

    Args:
        worker: A `PipelineWorker` built with metrics enabled (TTFB feeds the breakdown).

    Returns:
        The call's report (also found again with `latency_report(worker)`).
    """
    heard = HeardSpeechEnd()
    report = LatencyReport(send=_rtvi_sender(worker), heard=heard)
    observer = _LatencyObserver(heard)

    @observer.event_handler("on_latency_breakdown")
    async def _breakdown(_observer, breakdown):
        await report.add(breakdown)

    worker.add_observer(observer)
    _REPORTS[worker] = report
    return report


def latency_report(worker) -> LatencyReport | None:
    """The report `track_latency` attached to `worker`, if any."""
    return _REPORTS.get(worker)


def log_call_summary(worker) -> None:
    """At the end of a call: one line with the median and worst voice-to-voice latency."""
    report = latency_report(worker)
    line = report.summary() if report is not None else None
    if line:
        logger.info(line)


def _rtvi_sender(worker):
    """An async callable that sends the browser a message through `worker.rtvi` while the call lives, or None
    when the worker does not speak RTVI.

    It holds the RTVI processor weakly: `_REPORTS` keeps the report as long as the worker lives, and a strong
    reference from the report back into the worker's pipeline would keep the worker, and with it the whole call
    (its WebRTC connection, resamplers and their threads), alive for the life of the process.
    """
    try:
        rtvi = worker.rtvi
    except Exception:  # Pipecat raises when RTVI is not enabled
        return None
    method = weakref.WeakMethod(rtvi.send_server_message)

    async def send(message: dict) -> None:
        bound = method()
        if bound is not None:
            await bound(message)

    return send


def _ms(seconds: float) -> int:
    return round(seconds * 1000)
