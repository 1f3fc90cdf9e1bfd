"""YAML configuration files read into validated objects.

`${VAR}` in a string value is replaced from the environment (and `.env`); errors name the key path.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Literal, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import UserError


class ConfigError(UserError):
    """A config file that cannot be read or has a bad value; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PiperConfig(_Strict):
    """The Piper base voice: a `.onnx` voice file (default: the bundled en_US joe voice) and its manner."""

    voice: Optional[Path] = None
    speaker: Optional[int] = Field(default=None, ge=0)
    length_scale: Optional[float] = Field(default=None, gt=0, le=4)
    noise_scale: Optional[float] = Field(default=None, ge=0, le=2)
    noise_w_scale: Optional[float] = Field(default=None, ge=0, le=2)


class OpenAITTSConfig(_Strict):
    """The OpenAI (or compatible) speech API; the key comes from OPENAI_API_KEY."""

    model: str = "gpt-4o-mini-tts"
    voice: str = "alloy"
    base_url: Optional[str] = None
    timeout_s: float = Field(default=20.0, gt=0, le=600)
    instructions: Optional[str] = None


class ConverterConfig(_Strict):
    """Which converter: an installed version, or a folder holding config.json and checkpoint.pth."""

    version: Literal["v1", "v2"] = "v2"
    folder: Optional[Path] = None
    device: str = "auto"


class TTSConfig(_Strict):
    """The cloned voice: base engine, enrolled voice (name or audio file), conversion strength."""

    engine: Literal["piper", "openai"] = "piper"
    voice: Optional[str] = None
    tau: float = Field(default=0.3, ge=0, le=2)
    seed: Optional[int] = None
    piper: PiperConfig = PiperConfig()
    openai: OpenAITTSConfig = OpenAITTSConfig()
    converter: ConverterConfig = ConverterConfig()


class Settings(BaseModel):
    """Shared settings; bot files add their own sections beside these."""

    model_config = ConfigDict(extra="ignore")

    models_dir: Optional[Path] = None
    voices_dir: Optional[Path] = None
    tts: TTSConfig = TTSConfig()


def load_settings(path: Path | None) -> Settings:
    """Settings from a YAML file, or the defaults when `path` is None."""
    if path is None:
        return Settings()
    return validate(Settings, read_yaml(Path(path)), Path(path))


def validate(model: type[BaseModel], raw: dict, source: Path):
    """Validate a parsed file; the first problem becomes one line naming the key path."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        # Discriminated unions add the chosen tag to the location (`stt.deepgram.model`): drop it.
        loc = [str(p) for p in err["loc"]]
        loc = [p for i, p in enumerate(loc) if not (i > 0 and p in _UNION_TAGS and loc[i - 1] in _UNION_FIELDS)]
        key = ".".join(loc) or "(top level)"
        message = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        raise ConfigError(f"{source}: {key}: {message}") from None


_UNION_FIELDS = {"transport", "stt", "llm"}
_UNION_TAGS = {"daily", "webrtc", "local", "deepgram", "whisper", "openai", "echo"}

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def read_yaml(path: Path) -> dict:
    """Parse a YAML mapping and fill `${VAR}` references from the environment."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a config file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read it ({exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values at the top level")
    return _substitute(data, path, [])


def _substitute(value, path: Path, keys: list[str]):
    if isinstance(value, dict):
        return {k: _substitute(v, path, keys + [str(k)]) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, path, keys + [str(i)]) for i, v in enumerate(value)]
    if isinstance(value, str):
        def fill(match: re.Match) -> str:
            name = match.group(1)
            if name not in os.environ:
                raise ConfigError(f"{path}: {'.'.join(keys)}: ${{{name}}} is not set (in the environment or .env)")
            return os.environ[name]

        return _VAR.sub(fill, value)
    return value


# ------------------------------------------------------------------------------------------------ bot files
DEFAULT_SYSTEM_PROMPT = (
    "You are a friendly voice assistant in a live call. Answer in one to three short spoken sentences, "
    "without lists, markdown or emoji: everything you write is read aloud."
)


class DailyTransportConfig(_Strict):
    """A Daily room: `room_url` to join one, or none to create one with DAILY_API_KEY."""

    type: Literal["daily"] = "daily"
    room_url: Optional[str] = None
    bot_name: str = "voiceclone"
    room_expiry_minutes: int = Field(default=60, ge=1, le=24 * 60)


class WebRTCTransportConfig(_Strict):
    """A browser tab talking to a small local web app (Pipecat's prebuilt client)."""

    type: Literal["webrtc"] = "webrtc"
    host: str = "127.0.0.1"
    port: int = Field(default=7860, ge=1, le=65535)


class LocalTransportConfig(_Strict):
    """The computer's own microphone and speakers (needs the `local` extra: pyaudio)."""

    type: Literal["local"] = "local"
    input_device: Optional[int] = Field(default=None, ge=0)
    output_device: Optional[int] = Field(default=None, ge=0)


class VADConfig(_Strict):
    """Silero VAD: how sure, how long before speech starts and after it stops."""

    confidence: float = Field(default=0.7, gt=0, lt=1)
    start_secs: float = Field(default=0.2, ge=0, le=5)
    stop_secs: float = Field(default=0.8, ge=0, le=5)
    min_volume: float = Field(default=0.6, ge=0, le=1)


class DeepgramSTTConfig(_Strict):
    """Deepgram streaming speech-to-text; the key comes from DEEPGRAM_API_KEY."""

    engine: Literal["deepgram"] = "deepgram"
    model: str = "nova-3-general"
    language: str = "en"
    base_url: Optional[str] = None


class WhisperSTTConfig(_Strict):
    """Local Whisper (faster-whisper): a model name or a CTranslate2 model folder."""

    engine: Literal["whisper"] = "whisper"
    model: str = "tiny.en"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compute_type: str = "default"
    language: Optional[str] = "en"


class OpenAILLMConfig(_Strict):
    """An OpenAI-compatible chat model; the key comes from OPENAI_API_KEY."""

    engine: Literal["openai"] = "openai"
    model: str = "gpt-4o-mini"
    base_url: Optional[str] = None
    temperature: float = Field(default=0.7, ge=0, le=2)
    system_prompt: str = DEFAULT_SYSTEM_PROMPT


class EchoLLMConfig(_Strict):
    """No model: the bot says back what it heard (for trying voices, no key)."""

    engine: Literal["echo"] = "echo"
    prefix: str = "You said: "


class PipelineConfig(_Strict):
    """How the conversation runs."""

    interruptions: bool = True
    # smart: Pipecat's smart-turn model decides when the user has finished (waits longer after an unfinished
    # sentence); silence: the turn ends after `silence_s` without speech.
    turn_end: Literal["smart", "silence"] = "smart"
    silence_s: float = Field(default=0.6, gt=0, le=5)
    metrics: bool = True
    idle_timeout_s: Optional[float] = Field(default=300, gt=0)
    opening_line: Optional[str] = None


TransportConfig = Annotated[
    Union[DailyTransportConfig, WebRTCTransportConfig, LocalTransportConfig], Field(discriminator="type")
]
STTConfig = Annotated[Union[DeepgramSTTConfig, WhisperSTTConfig], Field(discriminator="engine")]
LLMConfig = Annotated[Union[OpenAILLMConfig, EchoLLMConfig], Field(discriminator="engine")]

TRANSPORTS = ("daily", "webrtc", "local")


class BotConfig(_Strict):
    """A bot: transport, VAD, speech-to-text, LLM, cloned-voice TTS and pipeline behaviour."""

    models_dir: Optional[Path] = None
    voices_dir: Optional[Path] = None
    transport: TransportConfig = WebRTCTransportConfig()
    vad: VADConfig = VADConfig()
    stt: STTConfig = WhisperSTTConfig()
    llm: LLMConfig = EchoLLMConfig()
    tts: TTSConfig = TTSConfig()
    pipeline: PipelineConfig = PipelineConfig()


def load_bot_config(path: Path, transport: str | None = None, voice: str | None = None) -> BotConfig:
    """A bot file, with `--transport` and `--voice` from the command line taking precedence."""
    raw = read_yaml(Path(path))
    if transport is not None:
        if transport not in TRANSPORTS:
            raise ConfigError(f"--transport {transport!r}: choose one of {', '.join(TRANSPORTS)}")
        current = raw.get("transport")
        if not (isinstance(current, dict) and current.get("type") == transport):
            raw["transport"] = {"type": transport}
    if voice is not None:
        tts = raw.setdefault("tts", {})
        if not isinstance(tts, dict):
            raise ConfigError(f"{path}: tts: expected a mapping")
        tts["voice"] = voice
    return validate(BotConfig, raw, Path(path))
