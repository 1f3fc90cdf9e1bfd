"""What `run-bot` and `config check` share: the bot's config with the command line's overrides, and its logging."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from loguru import logger

from voiceclone.cli.common import settings
from voiceclone.config.sections import BotConfig
from voiceclone.errors import UserError

TransportOption = Annotated[
    Optional[str], typer.Option("--transport", "-t", help="daily, webrtc or local (overrides the config file).")
]
BotConfigOption = Annotated[
    Path,
    typer.Option(
        "--config", "-c", help="The bot's YAML file, or the name of a shipped one: offline, webrtc, daily, local."
    ),
]


def bot_settings(
    config: Path,
    transport: str | None,
    voice: str | None,
    host: str | None = None,
    port: int | None = None,
    converter: str | None = None,
):
    """The bot's config with the command line's overrides; `--host`/`--port` only for the WebRTC transport."""
    transport = transport.strip().lower() if transport else transport  # "WebRTC" is webrtc
    # The transport is checked first (`settings` refuses an unknown one): "--transport pigeon --port 7999" is
    # about the transport, not the port.
    if host is not None or port is not None:
        if _transport(config, transport) != "webrtc":
            raise UserError("--host and --port are for the webrtc transport (add --transport webrtc)")
        # A config with no transport section is WebRTC's defaults, but `transport.port` alone names no type.
        transport = "webrtc"
    return settings(
        config,
        transport__type=("--transport", transport),
        tts__voice=("--voice", voice),
        transport__host=("--host", host),
        transport__port=("--port", port),
        tts__converter__engine=("--converter", converter),
    )


def _transport(config: Path, transport: str | None) -> str:
    """The transport the bot will use: `--transport` (checked), else the config file's (webrtc when it names none)."""
    if not config:
        return transport or BotConfig().transport.type
    return settings(config, transport__type=("--transport", transport)).transport.type


def log_to_terminal(verbose: bool) -> None:
    """Our own one-line reports (errors, voice switches); Pipecat's details only with --verbose."""
    logger.remove()
    if verbose:
        logger.add(sys.stderr, level="DEBUG")
    else:
        logger.add(
            sys.stderr,
            level="INFO",
            format="{time:HH:mm:ss} {message}",
            filter=lambda record: record["name"].startswith("voiceclone"),
        )
