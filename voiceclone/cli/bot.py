"""`voiceclone run-bot`: a live voice bot (VAD, speech-to-text, LLM, cloned voice) from a YAML config."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from voiceclone.cli.common import (
    ConverterOption,
    ModelsDirOption,
    VoicesDirOption,
    conversion_loader,
    err,
    library,
    say,
    settings,
)
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


def run_bot(
    config: BotConfigOption = Path("configs/offline.yaml"),
    voice: Annotated[Optional[str], typer.Option("--voice", help="An enrolled voice (overrides tts.voice).")] = None,
    transport: TransportOption = None,
    host: Annotated[
        Optional[str], typer.Option("--host", help="WebRTC: the address to listen on (overrides transport.host).")
    ] = None,
    port: Annotated[
        Optional[int], typer.Option("--port", help="WebRTC: the port to listen on (overrides transport.port).")
    ] = None,
    converter: ConverterOption = None,
    no_watermark: Annotated[
        bool, typer.Option("--no-watermark", help="Leave out the inaudible provenance mark (on by default).")
    ] = False,
    voices_dir: VoicesDirOption = None,
    models_dir: ModelsDirOption = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-V", help="Log everything Pipecat does.")] = False,
) -> None:
    """Run a live voice bot (VAD, speech-to-text, LLM, cloned voice) from a YAML config."""
    import asyncio

    from voiceclone.cloning.speaker import check_consent, load_watermarker
    from voiceclone.pipecat.bot import prepare_voice
    from voiceclone.pipecat.services import check_keys, preload

    cfg = bot_settings(config, transport, voice, host, port, converter)
    if no_watermark:
        cfg = cfg.model_copy(update={"watermark": False})
    if not cfg.tts.voice:
        raise UserError("say whose voice the bot speaks in: --voice NAME or tts.voice in the config")
    check_keys(cfg)  # before anything loads or connects
    lib = library(cfg, voices_dir)
    check_consent(cfg.consent, lib, cfg.tts.voice)  # an unknown or refused voice fails before anything loads
    log_to_terminal(verbose)
    from voiceclone.pipecat.runner import run

    conversion = conversion_loader(cfg, models_dir)()
    with err.status("Loading the voice and the speech recogniser ..."):
        resources = prepare_voice(cfg, conversion, None, lib, load_watermarker(cfg.watermark))
        preload(cfg)
    try:
        asyncio.run(
            run(cfg, resources, lambda text: err.print(text, style="bold green", markup=False, highlight=False))
        )
    except KeyboardInterrupt:
        pass
    mark = "its voice carried the provenance mark (PerTh)" if cfg.watermark else "not watermarked (--no-watermark)"
    say(f"bot stopped; {mark}", to_err=True)


def bot_settings(
    config: Path,
    transport: str | None,
    voice: str | None,
    host: str | None = None,
    port: int | None = None,
    converter: str | None = None,
):
    """The bot's config with the command line's overrides; `--host`/`--port` only for the WebRTC transport."""
    if (host is not None or port is not None) and (transport or _file_transport(config)) != "webrtc":
        raise UserError("--host and --port are for the webrtc transport (add --transport webrtc)")
    return settings(
        config,
        transport__type=("--transport", transport),
        tts__voice=("--voice", voice),
        transport__host=("--host", host),
        transport__port=("--port", port),
        tts__converter__engine=("--converter", converter),
    )


def _file_transport(config: Path) -> str:
    """The transport a config file names (webrtc when it names none)."""
    from voiceclone.config.loading import BotConfig

    return settings(config).transport.type if config else BotConfig().transport.type


def log_to_terminal(verbose: bool) -> None:
    """Our own one-line reports (errors, voice switches); Pipecat's details only with --verbose."""
    from loguru import logger

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
