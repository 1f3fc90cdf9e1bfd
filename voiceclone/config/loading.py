"""Loading a bot config: the public entry points (`load_config`, `resolve_config`, `shipped_configs`).

A file (or the shipped config it names) is read by `reading`, command-line values are written over it, and the
result is validated into the models of `sections`; a problem is one `ConfigError` line naming the key path, or
the flag that set it. `${VAR}` in a string value is replaced from the environment (and `.env`).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ValidationError

from voiceclone.config.reading import ConfigError, read_yaml
from voiceclone.config.sections import UNION_CHOICES, UNION_FIELDS, UNION_TAGS, BotConfig

SHIPPED_CONFIGS = Path(__file__).parent.parent / "configs"


def load_config(path: Path | None = None, overrides: dict[str, tuple[str, object]] | None = None) -> BotConfig:
    """A config file (or the defaults when `path` is None), with command-line values taking precedence.

    One loader and one set of rules for every command: `speak --config` refuses what `config check` refuses.

    Args:
        path: The YAML file, or None for the defaults.
        overrides: Dotted key (`tts.tau`, `transport.type`) -> (the flag that gave it, its value); values that
            are None are not given and leave the file's value alone.

    Returns:
        The validated config.
    """
    path = resolve_config(Path(path)) if path is not None else None
    raw = read_yaml(path) if path is not None else {}
    source = path if path is not None else "the defaults"
    flags: dict[str, str] = {}
    for key, (flag, value) in (overrides or {}).items():
        if value is None:
            continue
        flags[key] = flag
        if key == "transport.type":
            _override_transport(raw, str(value))
        else:
            _set_key(raw, key, value, source)
    return validate(BotConfig, raw, source, flags)


def shipped_configs() -> list[str]:
    """Names of the example configs that ship with the package (`offline`, `webrtc`, ...)."""
    return sorted(p.stem for p in SHIPPED_CONFIGS.glob("*.yaml"))


def resolve_config(path: Path) -> Path:
    """A config file that exists, else the shipped config it names (`offline`, `offline.yaml`, `configs/offline.yaml`).

    So that an installed `voiceclone` finds its example configs from any folder; a folder that happens to bear a
    shipped config's name (`offline/`) does not hide it.
    """
    if (
        path.is_file()
        or (path.exists() and not _names_shipped(path))
        or path.parent not in (Path("."), Path("configs"))
    ):
        return path
    shipped = SHIPPED_CONFIGS / (path.name if path.suffix else f"{path.name}.yaml")
    if shipped.is_file():
        return shipped
    raise ConfigError(f"{path}: config file not found (shipped configs: {', '.join(shipped_configs())})")


def _names_shipped(path: Path) -> bool:
    """`path` is a bare name (or configs/NAME) of a shipped config."""
    return path.parent in (Path("."), Path("configs")) and (SHIPPED_CONFIGS / f"{path.stem}.yaml").is_file()


def _override_transport(raw: dict, transport: str) -> None:
    """`--transport X` keeps the file's transport section when it is of type X, else starts a fresh one."""
    transports = UNION_CHOICES["transport"]
    if transport not in transports:
        raise ConfigError(f"--transport {transport!r}: choose one of {', '.join(transports)}")
    current = raw.get("transport")
    if not (isinstance(current, dict) and current.get("type") == transport):
        raw["transport"] = {"type": transport}


def _set_key(raw: dict, key: str, value: object, source: Path | str) -> None:
    """Write `value` at the dotted `key` of `raw`, making the sections on the way that are missing."""
    *sections, leaf = key.split(".")
    node = raw
    for i, section in enumerate(sections):
        node = node.setdefault(section, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{source}: {'.'.join(sections[: i + 1])}: expected a mapping")
    node[leaf] = value


def validate(model: type[BaseModel], raw: dict, source: Path | str, flags: dict[str, str] | None = None):
    """Validate parsed settings; the first problem becomes one line naming the key path (or the flag that set it).

    Args:
        model: The pydantic model to validate against.
        raw: The parsed file, with command-line values already written in.
        source: What to name in the message (the file, or "the defaults").
        flags: Dotted key -> the command-line flag that set it, so that `--tau 9` is blamed on `--tau`.
    """
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        # Discriminated unions add the chosen tag to the location (`stt.deepgram.model`): drop it.
        loc = [str(p) for p in err["loc"]]
        loc = [p for i, p in enumerate(loc) if not (i > 0 and p in UNION_TAGS and loc[i - 1] in UNION_FIELDS)]
        key = ".".join(loc) or "(top level)"
        key, message = _explain(err, key)
        flag = (flags or {}).get(key)
        if flag:
            raise ConfigError(f"{flag}: {message}") from None
        raise ConfigError(f"{source}: {key}: {message}") from None


def _explain(err: dict, key: str) -> tuple[str, str]:
    """(key, message) of a validation error, in the words of the config file rather than pydantic's."""
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind == "extra_forbidden":
        return key, "unknown key"
    if kind in ("union_tag_not_found", "union_tag_invalid"):  # `type:` of a transport, `engine:` of stt and llm
        field = str(ctx.get("discriminator", "")).strip("'")
        choices = UNION_CHOICES.get(key.split(".")[0], ())
        if kind == "union_tag_not_found":
            return key, f"say which one with `{field}:` ({', '.join(choices)})"
        return f"{key}.{field}", f"{ctx.get('tag')!r} is not one of {', '.join(choices)}"
    return key, err["msg"]
