"""YAML configuration files read into validated objects.

`${VAR}` in a string value is replaced from the environment (and `.env`); errors name the key path.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal, Optional

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
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        message = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        raise ConfigError(f"{source}: {key}: {message}") from None


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
