"""A live bot: config -> voice and services -> Pipecat pipeline on a transport -> run until done."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..cloned import ClonedVoice
from ..config import BotConfig
from ..enrollment import embedding_for, target_embedding
from ..voices import VoiceLibrary

log = logging.getLogger(__name__)


@dataclass
class VoiceResources:
    """What every session of a bot shares: the loaded converter, base engine and voices."""

    converter: object
    engine: object
    library: VoiceLibrary
    voice_name: str
    target_se: np.ndarray
    source_se: np.ndarray
    tau: float
    seed: int | None

    def cloned_voice(self) -> ClonedVoice:
        """A fresh cloned voice for one session (its own target, so a switch stays in that call)."""
        return ClonedVoice(self.engine, self.converter, self.target_se, self.source_se, self.tau, self.seed)

    def resolve(self, name: str) -> np.ndarray:
        """The embedding of an enrolled voice, for a mid-call switch."""
        return embedding_for(self.library, self.library.get(name), self.converter)


def prepare_voice(cfg: BotConfig, converter, engine, library: VoiceLibrary) -> VoiceResources:
    """Load the voice, learn the base voice once, and warm the converter up so the first reply is quick."""
    from ..cloned import source_embedding

    voice = cfg.tts.voice
    assert voice is not None
    target, _ = target_embedding(library, voice, converter)
    source = source_embedding(engine, converter)
    warm = np.zeros(converter.sampling_rate // 2, dtype=np.float32)
    for _ in converter.convert_stream(warm, source, target, tau=0.0):  # first calls allocate and pick kernels
        pass
    return VoiceResources(converter, engine, library, voice, target, source, cfg.tts.tau, cfg.tts.seed)


def build_worker(
    cfg: BotConfig,
    resources: VoiceResources,
    transport_input,
    transport_output,
    on_error: Callable | None = None,
    enable_rtvi: bool | None = None,
):
    """The pipeline (input, STT, user turn, LLM, cloned TTS, output, assistant turn) in a worker."""
    from pipecat.audio.vad.silero import SileroVADAnalyzer
    from pipecat.audio.vad.vad_analyzer import VADParams
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.pipeline.worker import PipelineParams, PipelineWorker, ProcessorUnusablePolicy
    from pipecat.processors.aggregators.llm_context import LLMContext
    from pipecat.processors.aggregators.llm_response_universal import (
        LLMContextAggregatorPair,
        LLMUserAggregatorParams,
    )

    from .services import make_llm, make_stt
    from .tts import ClonedVoiceTTSService

    vad = SileroVADAnalyzer(
        params=VADParams(
            confidence=cfg.vad.confidence,
            start_secs=cfg.vad.start_secs,
            stop_secs=cfg.vad.stop_secs,
            min_volume=cfg.vad.min_volume,
        )
    )
    user_params = LLMUserAggregatorParams(vad_analyzer=vad)
    if not cfg.pipeline.interruptions or cfg.pipeline.turn_end == "silence":
        from pipecat.turns.user_start import TranscriptionUserTurnStartStrategy, VADUserTurnStartStrategy
        from pipecat.turns.user_stop import SpeechTimeoutUserTurnStopStrategy
        from pipecat.turns.user_turn_strategies import UserTurnStrategies

        interrupt = cfg.pipeline.interruptions
        user_params.user_turn_strategies = UserTurnStrategies(
            start=[
                VADUserTurnStartStrategy(enable_interruptions=interrupt),
                TranscriptionUserTurnStartStrategy(enable_interruptions=interrupt),
            ],
            stop=(
                [SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=cfg.pipeline.silence_s)]
                if cfg.pipeline.turn_end == "silence"
                else None  # the default: the smart-turn model
            ),
        )
    user, assistant = LLMContextAggregatorPair(LLMContext(), user_params=user_params)
    tts = ClonedVoiceTTSService(
        voice=resources.cloned_voice(), voice_name=resources.voice_name, resolve_voice=resources.resolve
    )
    pipeline = Pipeline(
        [transport_input, make_stt(cfg.stt), user, make_llm(cfg.llm), tts, transport_output, assistant]
    )
    worker = PipelineWorker(
        pipeline,
        params=PipelineParams(enable_metrics=cfg.pipeline.metrics, enable_usage_metrics=cfg.pipeline.metrics),
        idle_timeout_secs=cfg.pipeline.idle_timeout_s,
        cancel_on_idle_timeout=cfg.pipeline.idle_timeout_s is not None,
        # A service that can no longer work (a rejected key) ends the bot cleanly instead of leaving it deaf.
        processor_unusable_policy=ProcessorUnusablePolicy.END,
        enable_rtvi=enable_rtvi,  # None: added for clients that speak RTVI (the browser client)
    )

    @worker.event_handler("on_pipeline_error")
    async def _error(_worker, frame):
        if on_error is not None:
            on_error(frame)

    return worker


async def speak_opening_line(worker, cfg: BotConfig) -> None:
    """Queue the configured greeting, if any."""
    if cfg.pipeline.opening_line:
        from pipecat.frames.frames import TTSSpeakFrame

        await worker.queue_frames([TTSSpeakFrame(cfg.pipeline.opening_line)])
