"""YAML configuration files read into validated objects.

For now the settings every command shares (where converters and voices live); bot pipelines extend this.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import UserError


class ConfigError(UserError):
    """A config file that cannot be read or has a bad value; the message names the file and the key."""


class Settings(BaseModel):
    """Shared settings: `models_dir` (converter checkpoints) and `voices_dir` (the voice library)."""

    model_config = ConfigDict(extra="ignore")

    models_dir: Path | None = None
    voices_dir: Path | None = None


def load_settings(path: Path | None) -> Settings:
    """Settings from a YAML file, or the defaults when `path` is None."""
    if path is None:
        return Settings()
    raw = _read_yaml(Path(path))
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"{path}: {key}: {err['msg']}") from None


def _read_yaml(path: Path) -> dict:
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
    return data
