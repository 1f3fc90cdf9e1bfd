"""What every command shares: the two consoles, markup-safe output, common options, and the lookups they name.

Nothing a user or a file supplies is ever read as rich markup: messages are built as `Text`, and values go
into markup strings only through `esc`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.text import Text

from voiceclone.cloning.checkpoints import MODELS_DIR_ENV, SOURCES, ModelStore
from voiceclone.config.loading import load_config
from voiceclone.config.sections import BotConfig
from voiceclone.errors import UserError
from voiceclone.voices.names import VOICES_DIR_ENV, default_voices_dir
from voiceclone.voices.store import VoiceLibrary

out = Console()
err = Console(stderr=True)


def esc(value: object) -> str:
    """`value` as text that rich prints literally inside a markup string."""
    return escape(str(value))


def say(message: str, label: str = "", style: str = "", to_err: bool = False) -> None:
    """One line, never wrapped, never read as markup: an optional styled label, then the message."""
    text = Text.assemble((label, style), " ", message) if label else Text(message)
    (err if to_err else out).print(text, highlight=False, soft_wrap=True)


def error(message: str) -> None:
    """The one `error:` line of a failed command (a library's multi-line reason is folded into it)."""
    say(one_line(message), "error:", "bold red", to_err=True)


def one_line(message: str) -> str:
    """`message` on one line: its lines joined with "; ", their list markers and blank lines dropped."""
    lines = [line.strip().removeprefix("- ").strip() for line in str(message).splitlines()]
    return "; ".join(line for line in lines if line).replace(":;", ":")


def warn(message: str) -> None:
    """A `warning:` line on standard error."""
    say(message, "warning:", "yellow", to_err=True)


@contextmanager
def progress_bar(
    total: int, show: bool, description: str, fields: str = "", **initial: object
) -> Iterator[Callable[..., None] | None]:
    """A progress bar on standard error while the block runs (gone after it), or nothing when not `show`.

    Args:
        total: Steps in all.
        show: Whether to show it (on a terminal; never when piped).
        description: The words before the bar (an update may change them: `update(n, description=...)`).
        fields: A rich format after the count, e.g. "sentences, {task.fields[audio]:.1f} s of audio".
        initial: The starting values of the fields it names.

    Yields:
        `update(completed, **values)`, or None when not shown.
    """
    if not show:
        yield None
        return
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn(fields)]
    with Progress(*columns, console=err, transient=True) as display:
        task = display.add_task(description, total=total, **initial)
        yield lambda completed, **values: display.update(task, completed=completed, **values)


# ------------------------------------------------------------------------------------------------- options
ConfigOption = Annotated[
    Optional[Path],
    typer.Option("--config", "-c", help="YAML config file (see configs/; a name such as 'offline' works too)."),
]
ModelsDirOption = Annotated[
    Optional[Path],
    typer.Option(
        "--models-dir",
        envvar=MODELS_DIR_ENV,
        help="Keep converters in this folder instead of the Hugging Face cache.",
        show_envvar=True,
    ),
]
VoicesDirOption = Annotated[
    Optional[Path],
    typer.Option(
        "--voices-dir", envvar=VOICES_DIR_ENV, show_envvar=True, help="The voice library folder [default: ./voices]."
    ),
]
ConverterOption = Annotated[
    Optional[str],
    typer.Option(
        "--converter",
        help="auto (OpenVoice when installed, else the built-in voice matcher), openvoice or matcher [default: auto].",
    ),
]
ConverterDirOption = Annotated[
    Optional[Path],
    typer.Option(
        "--converter-dir",
        help="An OpenVoice converter folder (config.json + checkpoint.pth) instead of an installed one.",
    ),
]
ConverterVersionOption = Annotated[
    Optional[str],
    typer.Option(
        "--converter-version", help=f"Installed converter version to use: {', '.join(SOURCES)} [default: v2]."
    ),
]
DeviceOption = Annotated[
    Optional[str], typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps [default: auto].")
]


# ------------------------------------------------------------------------------------------------- lookups
def settings(config: Path | None, **overrides: tuple[str, object]) -> BotConfig:
    """The config file (or the defaults) with the flags given; `overrides` maps dotted keys to (flag, value)."""
    return load_config(config, {key.replace("__", "."): value for key, value in overrides.items()})


def store(cfg: BotConfig, models_dir: Path | None) -> ModelStore:
    """The converter store the flags, the environment and the config name (in that order)."""
    found = ModelStore.from_settings(models_dir or cfg.models_dir)
    if found.root is not None and found.root.exists() and not found.root.is_dir():
        raise UserError(f"{found.root}: not a folder; converters are kept in a folder (--models-dir, {MODELS_DIR_ENV})")
    return found


def library(cfg: BotConfig, voices_dir: Path | None) -> VoiceLibrary:
    """The voice library the flags, the environment and the config name (in that order)."""
    root = default_voices_dir(voices_dir, cfg.voices_dir)
    if root.exists() and not root.is_dir():
        raise UserError(f"{root}: not a folder; the voice library is a folder (--voices-dir, {VOICES_DIR_ENV})")
    return VoiceLibrary(root)


def outside_library(output: str | Path | None, library_root: Path) -> None:
    """Refuse an output inside the voice library: it would replace or add to a voice's own files (its speech, its
    consent) and leave it listed as sound."""
    if output is None or str(output) == "-":
        return
    try:
        inside = Path(output).resolve().is_relative_to(library_root.resolve())
    except OSError:
        return
    if inside:
        raise UserError(f"{output}: is inside the voice library ({library_root}); write the audio somewhere else")


def conversion_loader(cfg: BotConfig, models_dir: Path | None, spinner: bool = True):
    """The converter the settings choose (`auto` says once when it falls back to the matcher), as a loader.

    Args:
        cfg: The settings (`tts.converter`).
        models_dir: `--models-dir`.
        spinner: Show a spinner while an OpenVoice checkpoint loads (off when the caller shows its own).

    Returns:
        A function that loads the converter (`voiceclone.cloning.conversion.Conversion`).
    """
    from voiceclone.cloning.choice import choose  # torch and pipecat: see the package docstring

    notes: list[str] = []  # said when the converter is loaded: after the inputs were checked, not before an error
    load = choose(cfg.tts.converter, store(cfg, models_dir), notice=notes.append)

    def loaded():
        while notes:
            say(notes.pop(0), "note:", "cyan", to_err=True)
        with err.status("Loading the converter ...") if spinner else nullcontext():
            return load()

    return loaded
