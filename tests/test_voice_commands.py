"""Switching voices by asking: OpenAI tool calls (against the fake server) and the echo stand-in's commands."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import soxr
from fake_services import DEEPGRAM_KEY, OPENAI_KEY, FakeDeepgram, FakeOpenAIChat, tool_call
from loguru import logger
from pipecat.frames.frames import LLMContextFrame, TTSAudioRawFrame, TTSStoppedFrame, TTSTextFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.processors.aggregators.llm_context import LLMContext

from testkit.bot_harness import Do, Listener, RecordingSource, Until, run_bot, run_script
from voiceclone.cloning.cloned import ClonedVoice
from voiceclone.config.sections import BotConfig
from voiceclone.pipecat.bot import build_worker, prepare_voice
from voiceclone.pipecat.echo import EchoLLM
from voiceclone.pipecat.tools import VoiceChoice, parse_command
from voiceclone.pipecat.tts import ClonedVoiceTTSService

TIMEOUT_S = 180  # a limit for a loaded machine; every wait ends on an event first


@pytest.mark.parametrize(
    "said,command",
    [
        ("Talk like Alice.", ("switch", "Alice")),
        ("Could you talk like Carol, please?", ("switch", "Carol")),
        ("Switch to Bob.", ("switch", "Bob")),
        ("switch the voice to dave", ("switch", "dave")),
        ("Please use Carol's voice.", ("switch", "Carol")),
        ("Speak as the voice of Alice!", ("switch", "Alice")),
        ("List voices.", ("list", None)),
        ("Which voices do you have?", ("list", None)),
        ("What voices can you do?", ("list", None)),
        ("What time does the store open tomorrow?", None),
        ("I like to talk.", None),
    ],
)
def test_voice_commands_are_recognised(said, command):
    assert parse_command(said) == command


def test_spoken_names_find_enrolled_voices(tmp_path):
    class Library:
        def names(self):
            return ["alice-studio", "bob", "carol"]

    voices = VoiceChoice(Library(), lambda: "bob")
    assert voices.find("Carol") == "carol"
    assert voices.find("Alice Studio") == "alice-studio"
    assert voices.find("Carroll") == "carol"  # a mishearing
    assert voices.find("Zed") is None
    assert "alice-studio" in voices.unknown("Zed") and "carol" in voices.unknown("Zed")
    assert voices.listing() == "I'm talking like bob. I can also talk like alice-studio and carol."


@pytest.fixture(scope="module")
def parts(bot_parts):
    converter, library, engine = bot_parts
    return converter, library, engine


def echo_and_voice(parts, voice="bob"):
    conversion, library, engine = parts
    cloned = ClonedVoice(engine, conversion, library.get(voice).embedding("v2"), conversion.base_data(engine), tau=0.0)
    tts = ClonedVoiceTTSService(
        voice=cloned,
        voice_name=voice,
        resolve_voice=lambda name: conversion.voice_data(library, library.get(name)),
    )
    choice = VoiceChoice(library, lambda: tts.current_voice)  # as build_worker does
    return Pipeline([EchoLLM(prefix="You said: ", voices=choice), tts]), tts, choice


def user_says(text: str) -> LLMContextFrame:
    return LLMContextFrame(context=LLMContext(messages=[{"role": "user", "content": text}]))


def audio_of(frames) -> np.ndarray:
    chunks = [np.frombuffer(f.audio, "<i2") for f in frames if isinstance(f, TTSAudioRawFrame)]
    return np.concatenate(chunks) if chunks else np.zeros(0, "<i2")


def spoken(frames) -> str:
    return " ".join(f.text.strip() for f in frames if isinstance(f, TTSTextFrame))


def stopped(frame) -> bool:
    return isinstance(frame, TTSStoppedFrame)


async def test_the_echo_switches_voice_from_the_next_sentence(parts):
    pipeline, tts, choice = echo_and_voice(parts)
    down = await run_script(pipeline, [user_says("Talk like Carol."), Until(stopped)])
    assert tts.voice.target_se is not None and choice.current == "carol"
    assert spoken(down) == "Okay, now I'm talking like carol."
    # The confirmation is already in carol's voice: the same words from a carol-only bot sound the same.
    carol_pipeline, _, _ = echo_and_voice(parts, voice="carol")
    alone = await run_script(carol_pipeline, [user_says("Talk like Carol."), Until(stopped)])
    assert np.array_equal(audio_of(down), audio_of(alone))


async def test_the_echo_answers_an_unknown_voice_with_the_list_and_keeps_its_voice(parts):
    pipeline, tts, choice = echo_and_voice(parts)
    down = await run_script(
        pipeline, [user_says("Talk like Zed."), Until(stopped), user_says("List voices."), Until(stopped)]
    )
    assert choice.current == "bob" and str(tts._settings.voice) == "bob"
    said = spoken(down)
    assert "I don't have a voice called Zed. I can talk like bob and carol." in said
    assert "I'm talking like bob. I can also talk like carol." in said


async def test_a_voice_switched_from_the_page_is_the_one_the_echo_talks_about(parts):
    """The page switches with a settings frame, not through the echo: "list voices" must still name it."""
    from pipecat.frames.frames import TTSUpdateSettingsFrame

    pipeline, tts, choice = echo_and_voice(parts)

    async def switched() -> None:
        while tts.current_voice != "carol" or tts.voice.target_se is None:
            await asyncio.sleep(0.05)  # polls an event of the pipeline (the switch applied), not a duration

    page_switch = TTSUpdateSettingsFrame(delta=ClonedVoiceTTSService.Settings(voice="carol"))
    down = await run_script(pipeline, [page_switch, Do(switched), user_says("List voices."), Until(stopped)])
    assert choice.current == "carol"
    assert "I'm talking like carol. I can also talk like bob." in spoken(down)


async def test_a_long_sentence_that_mentions_switching_is_just_echoed(parts):
    pipeline, _, choice = echo_and_voice(parts)
    down = await run_script(
        pipeline, [user_says("I would like to switch to a cheaper phone plan soon."), Until(stopped)]
    )
    assert spoken(down).startswith("You said:") and choice.current == "bob"


# ------------------------------------------------------------------------------------------ OpenAI tool calls
@pytest.fixture
def keys(monkeypatch):
    monkeypatch.setenv("DEEPGRAM_API_KEY", DEEPGRAM_KEY)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)


@pytest.fixture
def log_lines():
    lines: list[str] = []
    handle = logger.add(lambda message: lines.append(message.record["message"]), level="INFO")
    yield lines
    logger.remove(handle)


async def bot_turn(parts, said: str, script: list, reply: str = "Done."):
    """One question to a whole bot (fake Deepgram hears `said`, the fake OpenAI answers from `script`)."""
    converter, library, engine = parts
    question = soxr.resample(engine.synthesize(said), engine.sample_rate, 16000).astype(np.float32)
    async with FakeDeepgram(transcript=said) as dg, FakeOpenAIChat(reply=reply, script=script) as llm:
        cfg = BotConfig.model_validate(
            {
                "tts": {"voice": "bob", "tau": 0},
                "pipeline": {"idle_timeout_s": 60},
                "stt": {"engine": "deepgram", "base_url": dg.base_url},
                "llm": {"engine": "openai", "base_url": llm.base_url, "model": "gpt-test"},
            }
        )
        listener = Listener()
        worker = build_worker(
            cfg,
            prepare_voice(cfg, converter, engine, library),
            RecordingSource(question, tail_s=4.0),
            listener,
            enable_rtvi=False,
        )
        assert await run_bot(worker, listener.answered, timeout=TIMEOUT_S)
    return llm.requests, listener


async def test_switch_voice_tool_call_switches_and_the_llm_confirms(parts, keys, log_lines):
    requests, listener = await bot_turn(
        parts, "Talk like Carol.", [tool_call("switch_voice", name="Carol"), "Okay, now I sound like Carol."]
    )
    tools = {t["function"]["name"] for t in requests[0]["tools"]}
    assert tools == {"list_voices", "switch_voice"}
    results = [m for m in requests[1]["messages"] if m.get("role") == "tool"]
    assert results and '"switched": true' in results[0]["content"] and "carol" in results[0]["content"]
    assert "now I sound like Carol" in listener.spoken()
    assert any("now speaking as 'carol'" in line for line in log_lines)


async def test_switch_to_an_unknown_voice_is_answered_with_the_list(parts, keys, log_lines):
    requests, listener = await bot_turn(parts, "Talk like Zed.", [tool_call("switch_voice", name="Zed")])
    assert len(requests) == 1  # answered by the bot itself: the LLM is not asked again
    assert "I don't have a voice called Zed. I can talk like bob and carol." in listener.spoken()
    assert not any("now speaking as" in line for line in log_lines)


async def test_list_voices_tool_call_gives_the_llm_the_voices(parts, keys):
    requests, listener = await bot_turn(
        parts, "Which voices do you have?", [tool_call("list_voices"), "I can talk like bob or carol."]
    )
    results = [m for m in requests[1]["messages"] if m.get("role") == "tool"]
    assert results and '"bob"' in results[0]["content"] and '"carol"' in results[0]["content"]
    assert "bob or carol" in listener.spoken()
