"""`voiceclone enroll`: recordings of a voice into a voice in the library."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table
from rich.text import Text

from voiceclone.audio.reader import check_audio_file
from voiceclone.cli.common import (
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
from voiceclone.cli.describe import consent_summary, converters_of
from voiceclone.errors import UserError
from voiceclone.voices.lookup import choose_name


def enroll(
    samples: Annotated[
        Optional[list[Path]],
        typer.Argument(help="Recordings of one voice: WAV, FLAC, OGG or MP3.", show_default=False),
    ] = None,
    name: Annotated[
        Optional[str], typer.Option("--name", "-n", help="Voice name [default: the first file's name].")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a voice of the same name.")] = False,
    consent_phrase: Annotated[
        bool,
        typer.Option(
            "--consent-phrase",
            help="The recording opens with the speaker reading the consent sentence, checked by speech "
            "recognition (without recordings: show the sentence to read).",
        ),
    ] = False,
    consent_audio: Annotated[
        Optional[Path],
        typer.Option("--consent-audio", help="A separate recording of the speaker reading the consent sentence."),
    ] = None,
    speaker: Annotated[
        Optional[str],
        typer.Option("--speaker", help="The speaker's name, as said in the consent sentence [default: from --name]."),
    ] = None,
    consent: Annotated[
        Optional[str],
        typer.Option(
            "--consent", help="Consent given as text (kept, marked unverified), for recordings made elsewhere."
        ),
    ] = None,
    voices_dir: VoicesDirOption = None,
    converter: ConverterOption = None,
    converter_dir: ConverterDirOption = None,
    converter_version: ConverterVersionOption = None,
    models_dir: ModelsDirOption = None,
    device: DeviceOption = None,
    config: ConfigOption = None,
) -> None:
    """Turn recordings of a voice into a voice in the library (with the speaker's consent)."""
    from voiceclone.responsible.consent.sentence import consent_sentence, speaker_from_voice_name

    cfg = settings(
        config,
        tts__converter__engine=("--converter", converter),
        tts__converter__folder=("--converter-dir", converter_dir),
        tts__converter__version=("--converter-version", converter_version),
        tts__converter__device=("--device", device),
    )
    lib = library(cfg, voices_dir)
    if not samples:
        if consent_phrase and (speaker or name):
            _show_sentence(consent_sentence(speaker or speaker_from_voice_name(name), date.today()))
            return
        raise UserError("give the recordings to enroll (or --name NAME --consent-phrase to see the sentence to read)")
    if consent is not None and (consent_phrase or consent_audio is not None):
        raise UserError(
            "give the consent one way: spoken (--consent-phrase or --consent-audio, verified) or as text (--consent)"
        )
    if speaker is not None and not (consent_phrase or consent_audio is not None):
        raise UserError(
            "--speaker names who reads the consent sentence: give it with --consent-phrase or --consent-audio"
        )
    if consent_phrase and consent_audio is not None:
        raise UserError(
            "give the spoken consent once: at the start of the recording (--consent-phrase) or in its own file "
            "(--consent-audio)"
        )
    voice_name = choose_name(lib, samples, name, force)  # a bad or taken name fails before any checking
    for path in [*samples, *([consent_audio] if consent_audio else [])]:
        check_audio_file(Path(path))  # so does a missing file
    # The layers that do the work bring torch, Whisper and the speaker encoder: imported once the inputs are good.
    from voiceclone.cloning.enrollment import enroll as enroll_voice
    from voiceclone.responsible.consent.verify import enrollment_consent

    who = speaker or speaker_from_voice_name(voice_name)
    with err.status("Checking the consent ..."):
        record = enrollment_consent(
            cfg.consent, who, samples[0] if consent_phrase else None, consent_audio, consent, samples=samples
        )
    load = conversion_loader(cfg, models_dir, spinner=False)
    with err.status("Reading the recordings ...") as status:
        voice, sample = enroll_voice(
            lib,
            samples,
            load,
            name=voice_name,
            force=force,
            consent=record,
            on_step=lambda step: status.update(Text(f"{step} ...")),
        )
    _render(voice, sample)


def _show_sentence(sentence: str) -> None:
    say("Read this sentence at the start of the recording (or record it alone for --consent-audio):")
    out.print(Text(f"  {sentence}", style="bold"), soft_wrap=True)
    say("then: voiceclone enroll RECORDING --name NAME --consent-phrase (a date within a few days is accepted)")


def _render(voice, sample) -> None:
    q = sample.quality
    table = Table(title=Text(f"Voice {voice.name!r}"), title_justify="left", show_header=False)
    table.add_row("recording", f"{q.duration_s:.1f} s in {len(sample.sources)} file(s)")
    table.add_row("speech", f"{q.speech_s:.1f} s")
    table.add_row("level", f"{q.speech_level_dbfs:.0f} dBFS (speech)")
    table.add_row("background", q.background())
    table.add_row("clipping", f"{q.clipped_fraction:.2%} of samples")
    table.add_row("converters", Text(", ".join(converters_of(voice.record)) or "-"))
    table.add_row("consent", Text(consent_summary(voice.record.consent)))
    out.print(table)
    for warning in sample.warnings():
        warn(warning)
    say(f"{voice.name!r} in {voice.folder}", "enrolled", "green")
