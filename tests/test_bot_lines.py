"""Fixed lines: rendered once per voice and converter, kept on disk, played without synthesis, never stale."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from pipecat.frames.frames import TTSAudioRawFrame, TTSSpeakFrame, TTSStoppedFrame, TTSUpdateSettingsFrame

from testkit.bot_harness import Until, run_script
from voiceclone.cloning.cloned import ClonedVoice
from voiceclone.cloning.matcher_conversion import MatcherConversion
from voiceclone.pipecat.lines import DID_NOT_CATCH, FixedLines, line_key
from voiceclone.pipecat.tts import ClonedVoiceTTSService

TIMEOUT_S = 120  # a limit for a loaded machine; every wait ends on an event first
GREETING = "Hello! I'm listening."


class CountingEngine:
    """The real base voice, counting what it is asked to synthesise."""

    def __init__(self, engine):
        self.engine = engine
        self.sample_rate = engine.sample_rate
        self.identity = engine.identity
        self.asked: list[str] = []

    def synthesize(self, sentence: str) -> np.ndarray:
        self.asked.append(sentence)
        return self.engine.synthesize(sentence)


@pytest.fixture(scope="module")
def parts(bot_parts):
    return bot_parts


def make_service(parts, engine, folder, voice="bob") -> ClonedVoiceTTSService:
    conversion, library, base = parts
    voice_obj = ClonedVoice(engine, conversion, library.get(voice).embedding("v2"), conversion.base_data(base), tau=0.0)
    return ClonedVoiceTTSService(
        voice=voice_obj,
        voice_name=voice,
        resolve_voice=lambda name: conversion.voice_data(library, library.get(name)),
        lines=FixedLines([GREETING, DID_NOT_CATCH], folder=folder),
    )


def audio_of(frames, context=None) -> np.ndarray:
    chunks = [np.frombuffer(f.audio, "<i2") for f in frames if isinstance(f, TTSAudioRawFrame)]
    return np.concatenate(chunks) if chunks else np.zeros(0, "<i2")


def stopped(frame) -> bool:
    return isinstance(frame, TTSStoppedFrame)


async def test_a_line_is_rendered_once_then_played_without_synthesis(parts, tmp_path):
    _, _, piper = parts
    first_engine = CountingEngine(piper)
    first = await run_script(make_service(parts, first_engine, tmp_path), [TTSSpeakFrame(GREETING), Until(stopped)])
    assert first_engine.asked == [GREETING]
    assert len(list(tmp_path.glob("*.npy"))) == 1

    later_engine = CountingEngine(piper)  # another call (a new service, nothing in memory): the disk copy plays
    later = await run_script(make_service(parts, later_engine, tmp_path), [TTSSpeakFrame(GREETING), Until(stopped)])
    assert later_engine.asked == []
    assert np.array_equal(audio_of(first), audio_of(later))
    assert any(isinstance(f, TTSStoppedFrame) for f in later)


async def test_lines_are_ready_before_the_call_and_other_text_is_still_synthesised(parts, tmp_path):
    _, _, piper = parts
    engine = CountingEngine(piper)
    service = make_service(parts, engine, tmp_path)
    service.prerender_lines()  # before the call, on the worker thread
    down = await run_script(
        service, [TTSSpeakFrame(DID_NOT_CATCH), Until(stopped), TTSSpeakFrame("Something new."), Until(stopped)]
    )
    assert sorted(engine.asked) == sorted([GREETING, DID_NOT_CATCH, "Something new."])  # each line rendered once
    assert len(audio_of(down)) > 0


class GatedEngine(CountingEngine):
    """Holds the synthesis of `held` until `release` is set (another line's rendering, slow on a loaded machine)."""

    def __init__(self, engine, held: str):
        super().__init__(engine)
        self.held, self.release = held, threading.Event()

    def synthesize(self, sentence: str) -> np.ndarray:
        if sentence == self.held:
            assert self.release.wait(TIMEOUT_S), "never released"
        return super().synthesize(sentence)


async def test_the_greeting_waits_for_its_own_rendering_not_for_every_line(parts, tmp_path):
    """The greeting is rendered first; its sentence plays as soon as it is, while the apology still renders."""
    _, _, piper = parts
    engine = GatedEngine(piper, held=DID_NOT_CATCH)
    service = make_service(parts, engine, tmp_path)
    service.prerender_lines()  # greeting, then the apology (held)
    try:
        down = await run_script(service, [TTSSpeakFrame(GREETING), Until(stopped)])
        assert len(audio_of(down)) > 0 and engine.asked == [GREETING]  # the apology had not even started
    finally:
        engine.release.set()


async def test_a_switched_voice_never_plays_the_old_voices_line(parts, tmp_path):
    _, _, piper = parts
    engine = CountingEngine(piper)
    service = make_service(parts, engine, tmp_path)
    down = await run_script(
        service,
        [
            TTSSpeakFrame(GREETING),
            Until(stopped),
            TTSUpdateSettingsFrame(delta=ClonedVoiceTTSService.Settings(voice="carol")),
            TTSSpeakFrame(GREETING),
            Until(stopped),  # of the second greeting: each wait looks at what came after the last frame sent
        ],
    )
    contexts = list(dict.fromkeys(f.context_id for f in down if isinstance(f, TTSAudioRawFrame)))
    assert engine.asked == [GREETING, GREETING]  # rendered again for carol
    bob = audio_of([f for f in down if getattr(f, "context_id", None) == contexts[0]])
    carol = audio_of([f for f in down if getattr(f, "context_id", None) == contexts[1]])
    assert len(bob) == len(carol) and not np.array_equal(bob, carol)


def test_the_key_follows_voice_engine_converter_and_tau(parts):
    conversion, library, piper = parts
    source = conversion.base_data(piper)
    bob = ClonedVoice(piper, conversion, library.get("bob").embedding("v2"), source, tau=0.0)
    carol = bob.with_target(library.get("carol").embedding("v2"))
    matcher = MatcherConversion()
    other_converter = ClonedVoice(piper, matcher, matcher.voice_data(library, library.get("bob")), source, tau=0.0)
    keys = {
        line_key(bob, GREETING),
        line_key(carol, GREETING),
        line_key(other_converter, GREETING),
        line_key(bob, GREETING, tau=0.3),
        line_key(bob, DID_NOT_CATCH),
        line_key(ClonedVoice(CountingEngine(piper), conversion, bob.target_se, source, tau=0.0), GREETING),
    }
    assert len(keys) == 5  # the counting engine has the same identity: it sounds the same
    assert line_key(bob, GREETING) == line_key(bob, f"  {GREETING} ")


def test_a_damaged_cached_line_is_rendered_again(parts, tmp_path):
    conversion, library, piper = parts
    voice = ClonedVoice(piper, conversion, library.get("bob").embedding("v2"), conversion.base_data(piper), tau=0.0)
    (tmp_path / f"{line_key(voice, GREETING)}.npy").write_bytes(b"not an array")
    lines = FixedLines([GREETING], folder=tmp_path)
    assert lines.load(voice, GREETING) is None
    assert lines.render_missing(voice) == 1 and lines.load(voice, GREETING) is not None
