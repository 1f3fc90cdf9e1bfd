"""Reading a YAML config file safely: its text into a mapping, with `${VAR}` filled from the environment.

The document's shape is checked before anything walks it (alias bombs, nesting too deep), and every problem is a
`ConfigError`, the one error of the config package, whose message names the file (and the key, where there is one).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import yaml

from voiceclone.errors import UserError


class ConfigError(UserError):
    """A config file that cannot be read or has a bad value; the message names the file and the key."""


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# A config is a few levels deep and a few hundred values; far past that is a mistake or an attack.
MAX_DEPTH = 64
MAX_NODES = 100_000


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
        _check_shape(yaml.compose(text, Loader=yaml.SafeLoader), path)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML{_yaml_problem(exc, text)}") from None
    except RecursionError:  # PyYAML's composer recurses once per level: thousands of `[` end here
        raise ConfigError(f"{path}: nested more than {MAX_DEPTH} levels deep; a config is a few levels") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values at the top level")
    return _substitute(data, path, [])


def _check_shape(root: yaml.Node | None, path: Path) -> None:
    """Refuse a YAML document whose aliases expand to a huge tree ("billion laughs") or that nests too deeply.

    PyYAML shares an aliased node rather than copying it, so loading is cheap, but everything that walks the
    result (the `${VAR}` fill, validation) visits each alias in full: the tree is measured as it would expand,
    stopping at the first node past the limit, before anything walks it.
    """
    stack = [(root, 1)] if root is not None else []
    seen = 0
    while stack:
        node, depth = stack.pop()
        seen += 1
        if seen > MAX_NODES:
            raise ConfigError(f"{path}: expands to more than {MAX_NODES:,} values (aliases repeating aliases?)")
        if depth > MAX_DEPTH:
            raise ConfigError(f"{path}: nested more than {MAX_DEPTH} levels deep; a config is a few levels")
        if isinstance(node, yaml.SequenceNode):
            stack.extend((child, depth + 1) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            stack.extend((part, depth + 1) for pair in node.value for part in pair)


def _substitute(value, path: Path, keys: list[str]):
    """`value` with every `${VAR}` in its strings replaced from the environment; `keys` locates it for errors."""
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


def _yaml_problem(exc: yaml.YAMLError, text: str) -> str:
    """What PyYAML found wrong and where, in words: ": while parsing a flow sequence (line 3), expected ',' or ']',
    but got '<stream end>' (line 3)". The end of the file counts as its last line, not the one after it."""
    lines = max(1, len(text.splitlines()))

    def at(mark) -> str:
        return f" (line {min(mark.line + 1, lines)})" if mark is not None else ""

    parts = []
    context, problem = getattr(exc, "context", None), getattr(exc, "problem", None)
    if context:
        parts.append(f"{context}{at(getattr(exc, 'context_mark', None))}")
    if problem:
        parts.append(f"{problem}{at(getattr(exc, 'problem_mark', None))}")
    return ": " + ", ".join(parts) if parts else ""
