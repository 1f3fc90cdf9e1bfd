"""`voiceclone enroll`: recordings of a voice into a voice in the library."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table
from rich.text import Text

from .common import (
    ConfigOption,
    ConverterDirOption,
    ConverterOption,
    ConverterVersionOption,
    DeviceOption,
    ModelsDirOption,
    VoicesDirOption,
    conversion_loader,
    err,
    library,
    out,
    say,
    settings,
    warn,
)


def enroll(
    samples: Annotated[
        list[Path], typer.Argument(help="Recordings of one voice: WAV, FLAC, OGG or MP3.", show_default=False)
    ],
    name: Annotated[
        Optional[str], typer.Option("--name", "-n", help="Voice name [default: the first file's name].")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a voice of the same name.")] = False,
    consent: Annotated[
        Optional[str], typer.Option("--consent", help="The speaker's consent, stored with the voice.")
    ] = None,
    voices_dir: VoicesDirOption = None,
    converter: ConverterOption = None,
    converter_dir: ConverterDirOption = None,
    converter_version: ConverterVersionOption = None,
    models_dir: ModelsDirOption = None,
    device: DeviceOption = None,
    config: ConfigOption = None,
) -> None:
    """Turn recordings of a voice into a voice in the library."""
    from ..enrollment import enroll as enroll_voice

    cfg = settings(
        config,
        tts__converter__engine=("--converter", converter),
        tts__converter__folder=("--converter-dir", converter_dir),
        tts__converter__version=("--converter-version", converter_version),
        tts__converter__device=("--device", device),
    )
    lib = library(cfg, voices_dir)
    load = conversion_loader(cfg, models_dir, spinner=False)
    with err.status("Reading the recordings ...") as status:
        voice, sample = enroll_voice(
            lib,
            samples,
            load,
            name=name,
            force=force,
            consent=consent,
            on_step=lambda step: status.update(Text(f"{step} ...")),
        )
    _render(voice, sample)


def converters_of(meta: dict) -> list[str]:
    """What a voice holds data for: OpenVoice versions (embeddings) and matcher versions (profiles)."""
    return sorted(meta.get("embeddings", {})) + sorted(meta.get("profiles", {}))


def _render(voice, sample) -> None:
    q = sample.quality
    table = Table(title=Text(f"Voice {voice.name!r}"), title_justify="left", show_header=False)
    table.add_row("recording", f"{q.duration_s:.1f} s in {len(sample.sources)} file(s)")
    table.add_row("speech", f"{q.speech_s:.1f} s")
    table.add_row("level", f"{q.speech_level_dbfs:.0f} dBFS (speech)")
    table.add_row("background", q.background())
    table.add_row("clipping", f"{q.clipped_fraction:.2%} of samples")
    table.add_row("converters", Text(", ".join(converters_of(voice.meta)) or "-"))
    out.print(table)
    for warning in q.warnings():
        warn(warning)
    say(f"{voice.name!r} in {voice.folder}", "enrolled", "green")
