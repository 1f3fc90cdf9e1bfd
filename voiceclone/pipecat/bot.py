"""A live bot: config -> voice and services -> Pipecat pipeline on a transport -> run until done."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from loguru import logger
from pipecat.audio.turn.smart_turn.base_smart_turn import SmartTurnParams
from pipecat.audio.vad.vad_analyzer import VADParams
from pipecat.frames.frames import TTSSpeakFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker, ProcessorUnusablePolicy
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair, LLMUserAggregatorParams
from pipecat.turns.user_start import TranscriptionUserTurnStartStrategy, VADUserTurnStartStrategy
from pipecat.turns.user_stop import SpeechTimeoutUserTurnStopStrategy, TurnAnalyzerUserTurnStopStrategy
from pipecat.turns.user_turn_strategies import UserTurnStrategies
from pipecat.workers.runner import WorkerRunner

from voiceclone.cloning.cloned import ClonedVoice
from voiceclone.cloning.conversion import Conversion
from voiceclone.cloning.enrollment import target_data
from voiceclone.cloning.speaker import base_engine
from voiceclone.config.sections import BotConfig, EchoLLMConfig, OpenAILLMConfig
from voiceclone.pipecat.caller_audio import CallerAudioEnd
from voiceclone.pipecat.failover import LostTurns
from voiceclone.pipecat.latency import log_call_summary, track_latency
from voiceclone.pipecat.lines import DID_NOT_CATCH, LOST_TURN, FixedLines
from voiceclone.pipecat.local_llm import LocalLLMService
from voiceclone.pipecat.services import make_llm_stage, make_stt_stage
from voiceclone.pipecat.shared_models import SharedSileroVADAnalyzer, SharedSmartTurnAnalyzer
from voiceclone.pipecat.speech_pauses import SpeechPauses
from voiceclone.pipecat.stopping import on_stop_signals
from voiceclone.pipecat.tools import VoiceChoice, voice_tools
from voiceclone.pipecat.tts import ClonedVoiceTTSService
from voiceclone.pipecat.turn_words import TurnWords
from voiceclone.pipecat.turns import SentenceEndUserTurnStopStrategy
from voiceclone.voices.lookup import allowed_voice
from voiceclone.voices.store import VoiceLibrary


@dataclass
class VoiceResources:
    """What every call of a bot shares: the loaded converter, base engine and voices."""

    converter: Conversion
    engine: object
    library: VoiceLibrary
    voice_name: str
    target: object  # the voice's data for the converter (embedding or profile)
    source: object  # the base voice's
    tau: float
    seed: int | None
    watermarker: object | None = None  # a loaded `responsible.watermark.Watermarker`: every call's audio is marked
    consent: str = "recorded"  # the consent policy a voice must pass to be spoken in (on load and on a switch)

    def cloned_voice(self) -> ClonedVoice:
        """A cloned voice for one call (its own noise generator; a voice switch stays in that call)."""
        return ClonedVoice(
            self.engine, self.converter, self.target, self.source, self.tau, self.seed, watermarker=self.watermarker
        )

    def resolve(self, name: str):
        """An enrolled voice's data for the converter, for a mid-call switch (refused as the policy says)."""
        return self.converter.voice_data(self.library, allowed_voice(self.library, name, self.consent))


def prepare_voice(
    cfg: BotConfig, conversion: Conversion, engine, library: VoiceLibrary, watermarker=None
) -> VoiceResources:
    """Load the voice, learn the base voice once, and warm the converter up so the first reply is quick.

    Args:
        cfg: The bot's config (`tts` names the engine, the voice, tau and seed).
        conversion: The loaded converter.
        engine: The base voice; None makes the one `cfg.tts` names.
        library: Where the voice and mid-call switches are looked up.
        watermarker: A loaded `Watermarker` to mark every call's audio, or None.

    Returns:
        What every call shares.
    """
    voice = cfg.tts.voice
    assert voice is not None
    engine = engine or base_engine(cfg.tts)
    target, _ = target_data(library, voice, conversion)
    source = conversion.base_data(engine)
    warm = np.zeros(conversion.sampling_rate // 2, dtype=np.float32)
    for _ in conversion.stream(warm, source, target):  # first calls allocate and pick kernels
        pass
    return VoiceResources(
        conversion, engine, library, voice, target, source, cfg.tts.tau, cfg.tts.seed, watermarker, cfg.consent
    )


def build_worker(
    cfg: BotConfig,
    resources: VoiceResources,
    transport_input,
    transport_output,
    on_error: Callable | None = None,
    enable_rtvi: bool | None = None,
    voice: tuple[str, object] | None = None,
):
    """The pipeline (input, STT, user turn, LLM, cloned TTS, output, assistant turn) in a worker.

    Args:
        cfg: The bot's config.
        resources: The loaded voice, shared by every call; this call gets its own `ClonedVoice`.
        transport_input: The transport's input processor.
        transport_output: The transport's output processor.
        on_error: Called with each `ErrorFrame` that reaches the worker.
        enable_rtvi: None adds RTVI for clients that speak it (the browser client).
        voice: (name, data from `resources.resolve(name)`) of the voice this call starts in, when the caller
            chose one; None starts in the bot's own. The call is built in it, so its first words are in it.

    Returns:
        A `PipelineWorker`, not started.
    """
    name, cloned = resources.voice_name, resources.cloned_voice()
    if voice is not None:
        name, cloned = voice[0], cloned.with_target(voice[1])
    tts = ClonedVoiceTTSService(
        voice=cloned,
        voice_name=name,
        resolve_voice=resources.resolve,
        tau=resources.tau,
        lines=fixed_lines(cfg),
    )
    voices = VoiceChoice(resources.library, lambda: tts.current_voice)  # "talk like Alice", per call
    context = LLMContext(tools=voice_tools(voices)) if _has_tools(cfg) else LLMContext()
    pauses = SpeechPauses()  # the VAD (in the user aggregator) tells the STT when to start early
    user, assistant = LLMContextAggregatorPair(context, user_params=_user_turn_params(cfg, pauses))
    tts.prerender_lines()  # the greeting and apologies, ready before the caller is
    llm = make_llm_stage(cfg, voices)
    words = None
    if cfg.pipeline.read_ahead and isinstance(llm, LocalLLMService):  # (not in a failover list: maybe not active)
        words = TurnWords()  # the STT tells the LLM the caller's words so far
        llm.read_ahead_from(words, context)
    stt = make_stt_stage(cfg, on_switch=LostTurns(user).stt_switched, pauses=pauses, words=words)
    # The caller's audio ends at the user aggregator, its last reader (`caller_audio`).
    pipeline = Pipeline([transport_input, stt, user, CallerAudioEnd(), llm, tts, transport_output, assistant])
    return _worker(cfg, pipeline, on_error, enable_rtvi)


def _has_tools(cfg: BotConfig) -> bool:
    """Whether an LLM of the config calls tools (the OpenAI-compatible ones do; the echo reads commands itself)."""
    return any(isinstance(llm, OpenAILLMConfig) for llm in cfg.llm_engines)


def fixed_lines(cfg: BotConfig):
    """The lines played from rendered audio: the greeting, the short apologies, the echo's "You said:"."""
    echo = [llm.prefix for llm in cfg.llm_engines if isinstance(llm, EchoLLMConfig)]
    return FixedLines([cfg.pipeline.opening_line, DID_NOT_CATCH, LOST_TURN, *echo])


def _user_turn_params(cfg: BotConfig, pauses: SpeechPauses | None = None):
    """The user aggregator's VAD and turn strategies: when the user starts and stops speaking."""
    v = cfg.vad
    vad = SharedSileroVADAnalyzer(  # this call's state, the process's one model
        params=VADParams(
            confidence=v.confidence, start_secs=v.start_secs, stop_secs=v.stop_secs, min_volume=v.min_volume
        ),
        pauses=pauses,
    )
    interrupt = cfg.pipeline.interruptions
    strategies = UserTurnStrategies(
        start=[
            VADUserTurnStartStrategy(enable_interruptions=interrupt),
            TranscriptionUserTurnStartStrategy(enable_interruptions=interrupt),
        ],
        stop=[_turn_stop_strategy(cfg)],
    )
    return LLMUserAggregatorParams(vad_analyzer=vad, user_turn_strategies=strategies)


def _turn_stop_strategy(cfg: BotConfig):
    """What decides that the user has finished (`pipeline.turn_end`)."""
    p = cfg.pipeline
    if p.turn_end == "silence":
        return SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=p.silence_s)
    if p.turn_end == "smart":
        # Pipecat's default waits 3 s (SmartTurnParams.stop_secs) after a turn the model calls unfinished.
        analyzer = SharedSmartTurnAnalyzer(params=SmartTurnParams(stop_secs=p.max_pause_s))
        return TurnAnalyzerUserTurnStopStrategy(turn_analyzer=analyzer)
    return SentenceEndUserTurnStopStrategy(
        max_pause_s=p.max_pause_s, min_words=p.min_words, speculate=p.speculate and _holds_speculation(cfg)
    )


def _holds_speculation(cfg: BotConfig) -> bool:
    """Whether every LLM of the config is a Pipecat LLM service, which holds a speculative answer until the turn
    is confirmed (the echo answers at once: a speculation withdrawn would have been said already)."""
    return not any(isinstance(llm, EchoLLMConfig) for llm in cfg.llm_engines)


def _worker(cfg: BotConfig, pipeline, on_error: Callable | None, enable_rtvi: bool | None):
    """A worker for the pipeline: metrics, idle timeout, and an unusable service ending the call."""
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

    track_latency(worker)  # one line per turn, and the same numbers to the browser
    return worker


async def run_worker(worker, handle_signals: bool) -> None:
    """Run one worker to its end; `handle_signals` lets Ctrl-C/SIGTERM end it (transports with one call)."""
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    if handle_signals:
        on_stop_signals(lambda: asyncio.ensure_future(worker.cancel(reason="stopped (Ctrl-C)")))
    try:
        await runner.run()
    finally:
        log_call_summary(worker)  # the call's median and worst voice-to-voice latency


def report_error(frame) -> None:
    """One log line for an error in a running call (which service, what)."""
    logger.error(f"{getattr(frame, 'processor', None) or 'pipeline'}: {frame.error}")


async def speak_opening_line(worker, cfg: BotConfig) -> None:
    """Queue the configured greeting, if any."""
    if cfg.pipeline.opening_line:
        await worker.queue_frames([TTSSpeakFrame(cfg.pipeline.opening_line)])
