"""`voiceclone config`: check a bot config file before running it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from voiceclone.cli.bot_settings import TransportOption, bot_settings
from voiceclone.cli.common import library, say
from voiceclone.config.needs import check_keys, check_transport
from voiceclone.errors import UserError

app = typer.Typer(help="Bot config files: check them before running.", no_args_is_help=True)


@app.command("check")
def config_check(
    file: Annotated[Path, typer.Argument(help="A bot config file, or the name of a shipped one.")],
    transport: TransportOption = None,
) -> None:
    """Validate a bot config (keys, values, the environment variables it needs) without running it."""
    cfg = bot_settings(file, transport, None)  # a bad file fails before Pipecat and torch load (3 s)
    check_keys(cfg)
    check_transport(cfg, listen=False)  # a port in use now may be free when the bot starts
    library(cfg, None)  # a voices_dir that is a file
    from voiceclone.pipecat.services import describe_llm, describe_stt  # Pipecat: see cli/__init__

    stt = describe_stt(cfg)
    llm = describe_llm(cfg)
    voice = cfg.tts.voice or "none yet (give --voice when running)"
    missing = _voice_not_found(cfg)
    say(
        f"{file}: transport {cfg.transport.type}, stt {stt}, llm {llm}, "
        f"tts {cfg.tts.engine} in voice {voice}, converter {_converter(cfg.tts.converter)}",
        "ok:",
        "green",
    )
    if missing:
        say(missing, "note:", "yellow")


def _voice_not_found(cfg) -> str | None:
    """Why `run-bot` would refuse the config's voice as things stand (not the file's fault: the library's)."""
    if not cfg.tts.voice:
        return None
    from voiceclone.voices.lookup import find_voice

    try:
        find_voice(library(cfg, None), cfg.tts.voice)
    except UserError as exc:
        return f"run-bot would refuse its voice as things stand: {exc}"
    return None


def _converter(c) -> str:
    if c.engine == "matcher":
        return "matcher"
    openvoice = f"OpenVoice {c.folder or c.version}"
    return openvoice if c.engine == "openvoice" else f"auto ({openvoice} when installed, else the matcher)"
