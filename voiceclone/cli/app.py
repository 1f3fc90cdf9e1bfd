"""The `voiceclone` command line, assembled: one module per command group, each thin (parse, call, render)."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer
from dotenv import find_dotenv, load_dotenv
from loguru import logger

from voiceclone import __version__
from voiceclone.cli import bot, config, enroll, models, speak, voices
from voiceclone.cli.common import error, say
from voiceclone.cli.detect import detect
from voiceclone.cli.eval import eval_voice
from voiceclone.errors import UserError
from voiceclone.openvoice.errors import CheckpointError

app = typer.Typer(
    name="voiceclone",
    help="Talk with an AI in a cloned voice: enroll a voice, hear it speak, run live voice bots.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # help text is shown as written: "[default: 0.3]" is not a markup tag
)
app.add_typer(models.app, name="models")
app.add_typer(voices.app, name="voices")
app.add_typer(config.app, name="config")
app.command()(enroll.enroll)
app.command()(speak.speak)
app.command("eval")(eval_voice)
app.command("detect")(detect)
app.command("run-bot")(bot.run_bot)


def _version_callback(value: bool) -> None:
    if value:
        say(f"voiceclone {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version_callback, is_eager=True, help="Show the version and exit.")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", help="Log what happens, for troubleshooting.")] = False,
) -> None:
    _configure_logging(verbose)


def _closed_streams_to_null() -> None:
    """A standard stream the caller closed (`2>&-`) becomes the null device: Python sets it to None, and every
    message, the logger's and rich's, then failed with an error nobody could see."""
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115 (for the process's life)


def _load_env_file() -> None:
    """`.env` (here or in a folder above) fills what the environment does not set; one that cannot be read is a
    warning, not a crash of every command (Windows editors save UTF-16 by default)."""
    path = find_dotenv(usecwd=True)
    if not path:
        return
    try:
        load_dotenv(path, override=False, encoding="utf-8")
    except (UnicodeDecodeError, OSError) as exc:
        problem = "is not UTF-8 text (save it as UTF-8)" if isinstance(exc, UnicodeDecodeError) else "cannot be read"
        print(f"warning: {path} {problem}: its settings were not used", file=sys.stderr)


def _configure_logging(verbose: bool) -> None:
    """One logger (loguru, as Pipecat's): warnings only, unless --verbose (Pipecat's banner and details too)."""
    logger.remove()
    if verbose:
        logger.add(sys.stderr, level="DEBUG", format="{level} {name}: {message}")
    else:
        logger.add(sys.stderr, level="WARNING", format=_terse)


def _terse(record) -> str:
    """A warning as the CLI's own lines say it ("warning: cannot cache ..."); anything worse with its source."""
    return "warning: {message}\n" if record["level"].name == "WARNING" else "{level} {name}: {message}\n"


def main() -> None:
    """Entry point: run the app; errors a user can fix end in one line and exit code 1."""
    _closed_streams_to_null()
    _load_env_file()
    try:
        app()
    except (UserError, CheckpointError) as exc:
        error(str(exc))
        sys.exit(1)
    except KeyboardInterrupt:
        say("interrupted", to_err=True)
        sys.exit(130)
