"""`ClonedVoiceTTSService` driven by Pipecat's own test runner: frames, interruption, voice switch, rates."""

from __future__ import annotations

import numpy as np
import pytest
from pipecat.frames.frames import (
    ErrorFrame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    MetricsFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSUpdateSettingsFrame,
)
from pipecat.metrics.metrics import TTFBMetricsData
from pipecat.pipeline.worker import PipelineParams
from pipecat.tests.utils import run_test

from testkit.bot_harness import Until, run_script
from voiceclone.cloning.cloned import ClonedVoice
from voiceclone.pipecat.tts import ClonedVoiceTTSService

# Limits for a slow, loaded machine, never measures of speed: every wait ends on an event first.
TIMEOUT_S = 120


async def run_test_(processor, **kwargs):
    """Pipecat's `run_test` with a start limit fit for a loaded machine (its default is 1 s)."""
    return await run_test(processor, start_timeout=TIMEOUT_S, **kwargs)


def is_audio(frame) -> bool:
    return isinstance(frame, TTSAudioRawFrame)


@pytest.fixture(scope="module")
def parts(bot_parts):
    return bot_parts


def service(parts, voice="bob") -> ClonedVoiceTTSService:
    converter, library, engine = parts
    target = library.get(voice).embedding("v2")
    cloned = ClonedVoice(engine, converter, target, tau=0.0)
    return ClonedVoiceTTSService(
        voice=cloned, voice_name=voice, resolve_voice=lambda name: converter.voice_data(library, library.get(name))
    )


def audio_of(frames, context_id=None) -> np.ndarray:
    parts = [
        np.frombuffer(f.audio, dtype="<i2")
        for f in frames
        if isinstance(f, TTSAudioRawFrame) and (context_id is None or f.context_id == context_id)
    ]
    return np.concatenate(parts) if parts else np.zeros(0, dtype="<i2")


async def test_speak_frame_gives_started_audio_stopped(parts):
    down, _ = await run_test_(service(parts), frames_to_send=[TTSSpeakFrame("Hello there. How are you today?")])
    kinds = [type(f) for f in down if isinstance(f, (TTSStartedFrame, TTSAudioRawFrame, TTSStoppedFrame))]
    assert kinds[0] is TTSStartedFrame and kinds.count(TTSStartedFrame) == 1
    audio_at = [i for i, k in enumerate(kinds) if k is TTSAudioRawFrame]
    stopped_at = kinds.index(TTSStoppedFrame)
    assert len(audio_at) > 2 and audio_at[-1] < stopped_at
    assert all(f.sample_rate == 24000 for f in down if isinstance(f, TTSAudioRawFrame))  # the pipeline's rate
    assert len({f.context_id for f in down if isinstance(f, TTSAudioRawFrame)}) == 1
    assert 1.0 < len(audio_of(down)) / 24000 < 5.0


async def test_llm_text_is_spoken_sentence_by_sentence_at_the_pipeline_rate(parts):
    frames = [
        LLMFullResponseStartFrame(),
        LLMTextFrame("Hello there. "),
        LLMTextFrame("How are "),
        LLMTextFrame("you?"),
        LLMFullResponseEndFrame(),
    ]
    down, _ = await run_test_(
        service(parts), frames_to_send=frames, pipeline_params=PipelineParams(audio_out_sample_rate=16000)
    )
    audio = [f for f in down if isinstance(f, TTSAudioRawFrame)]
    assert audio and all(f.sample_rate == 16000 and f.num_channels == 1 for f in audio)
    assert sum(isinstance(f, TTSStoppedFrame) for f in down) == 1


async def test_interruption_stops_the_audio_in_flight(parts):
    long_text = "This is a long answer that keeps going. " * 6
    answer = [LLMFullResponseStartFrame(), LLMTextFrame(long_text), LLMFullResponseEndFrame()]
    frames = [
        *answer,
        Until(is_audio),  # interrupt once the answer has started to sound, however fast this machine is
        InterruptionFrame(),
        Until(lambda f: isinstance(f, InterruptionFrame)),
        TTSSpeakFrame("New turn."),
    ]
    down = await run_script(service(parts), frames)
    cut = next(i for i, f in enumerate(down) if isinstance(f, InterruptionFrame))
    old = {f.context_id for f in down[:cut] if isinstance(f, TTSAudioRawFrame)}
    assert old, "some audio of the first answer played before the interruption"
    assert not any(isinstance(f, TTSAudioRawFrame) and f.context_id in old for f in down[cut:])
    uninterrupted = await run_script(service(parts), answer)
    assert len(audio_of(down[:cut])) < len(audio_of(uninterrupted))
    assert any(isinstance(f, TTSAudioRawFrame) for f in down[cut:])  # the next turn still speaks


async def test_voice_switch_mid_call(parts):
    svc = service(parts)
    frames = [
        TTSSpeakFrame("Same words."),
        Until(lambda f: isinstance(f, TTSStoppedFrame)),
        TTSUpdateSettingsFrame(delta=ClonedVoiceTTSService.Settings(voice="carol")),
        TTSSpeakFrame("Same words."),
    ]
    down = await run_script(svc, frames)
    contexts = list(dict.fromkeys(f.context_id for f in down if isinstance(f, TTSAudioRawFrame)))
    assert len(contexts) == 2
    first, second = audio_of(down, contexts[0]), audio_of(down, contexts[1])
    assert len(first) == len(second) and not np.array_equal(first, second)
    alone, _ = await run_test_(service(parts, voice="carol"), frames_to_send=[TTSSpeakFrame("Same words.")])
    assert np.array_equal(second, audio_of(alone))


async def test_switch_to_an_unknown_voice_keeps_the_voice(parts):
    frames = [
        TTSUpdateSettingsFrame(delta=ClonedVoiceTTSService.Settings(voice="nobody")),
        TTSSpeakFrame("Still me."),
    ]
    down, up = await run_test_(service(parts), frames_to_send=frames)
    assert any(isinstance(f, ErrorFrame) and "nobody" in f.error for f in up)
    alone, _ = await run_test_(service(parts), frames_to_send=[TTSSpeakFrame("Still me.")])
    assert np.array_equal(audio_of(down), audio_of(alone))


async def test_ttfb_metrics_cover_synthesis_and_conversion(parts):
    down, _ = await run_test_(
        service(parts),
        frames_to_send=[TTSSpeakFrame("Measure me.")],
        pipeline_params=PipelineParams(enable_metrics=True),
    )
    ttfb = [
        d for f in down if isinstance(f, MetricsFrame) for d in f.data if isinstance(d, TTFBMetricsData) and d.value > 0
    ]
    assert ttfb and "ClonedVoiceTTSService" in ttfb[0].processor
