"""`voiceclone run-bot`: a live voice bot (VAD, speech-to-text, LLM, cloned voice) from a YAML config."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from voiceclone.cli.bot_settings import BotConfigOption, TransportOption, bot_settings, log_to_terminal
from voiceclone.cli.common import (
    ConverterOption,
    ModelsDirOption,
    VoicesDirOption,
    conversion_loader,
    err,
    library,
    say,
)
from voiceclone.config.needs import check_keys, check_transport
from voiceclone.errors import UserError
from voiceclone.voices.lookup import check_consent


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
    cfg = bot_settings(config, transport, voice, host, port, converter)  # a bad config fails in well under 1 s
    if no_watermark:
        cfg = cfg.model_copy(update={"watermark": False})
    if not cfg.tts.voice:
        raise UserError("say whose voice the bot speaks in: --voice NAME or tts.voice in the config")
    check_keys(cfg)  # before anything loads or connects
    check_transport(cfg, listen=True)
    lib = library(cfg, voices_dir)
    check_consent(cfg.consent, lib, cfg.tts.voice)  # an unknown or refused voice fails before anything loads
    # The layers that do the work bring torch and Pipecat (3 s): imported once the config and voice are good.
    from voiceclone.cloning.speaker import load_watermarker
    from voiceclone.pipecat.bot import prepare_voice
    from voiceclone.pipecat.runner import run
    from voiceclone.pipecat.services import preload

    log_to_terminal(verbose)
    conversion = conversion_loader(cfg, models_dir)()
    with err.status("Loading the voice and the speech recogniser ..."):
        resources = prepare_voice(cfg, conversion, None, lib, load_watermarker(cfg.watermark))
        preload(cfg)
    try:
        asyncio.run(
            run(
                cfg,
                resources,
                lambda text: err.print(text, style="bold green", markup=False, highlight=False, soft_wrap=True),
            )
        )
    except KeyboardInterrupt:
        pass
    mark = "its voice carried the provenance mark (PerTh)" if cfg.watermark else "not watermarked (--no-watermark)"
    say(f"bot stopped; {mark}", to_err=True)
    _leave_without_finalizing()


def _leave_without_finalizing() -> None:
    """Exit now that the bot has stopped cleanly: every call ended, nothing left to write.

    Python's own finalization after that (freeing torch, llama.cpp, ONNX Runtime and Whisper one object at a time,
    all in C) took 1.3-1.9 s on a 2-core machine, so Ctrl-C seemed slow. The exit handlers still run and the
    streams are flushed; only the freeing of memory the operating system takes back anyway is skipped.
    """
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(0)
