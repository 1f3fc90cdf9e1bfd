"""`voiceclone voices`: the voice library: list, show, remove, rename, export, import."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table
from rich.text import Text

from voiceclone.cli.common import ConfigOption, VoicesDirOption, library, out, say, settings
from voiceclone.cli.describe import consent_kind, consent_summary, converters_of
from voiceclone.errors import UserError
from voiceclone.responsible.consent.policy import speaker_summary

app = typer.Typer(help="The voice library: list, show, remove, rename, export, import.", no_args_is_help=True)


def _library(voices_dir: Path | None, config: Path | None):
    return library(settings(config), voices_dir)


@app.command("list")
def voices_list(voices_dir: VoicesDirOption = None, config: ConfigOption = None) -> None:
    """List the enrolled voices (a damaged one is listed with what is wrong with it)."""
    lib = _library(voices_dir, config)
    entries = lib.scan()
    if not entries:
        say(f"No voices in {lib.root} yet: enroll one with `voiceclone enroll SAMPLE.wav --name NAME`.")
        return
    table = Table(title=Text(f"Voices in {lib.root}"), title_justify="left")
    for column in ("name", "speech", "converters", "created", "warnings", "consent"):
        table.add_column(column)
    for entry in entries:
        if not entry.ok:
            problem = Text(f"damaged: {entry.problem} (voiceclone voices rm {entry.name} --yes)", style="red")
            table.add_row(Text(entry.name), "-", problem, "", "", "")
            continue
        record = entry.voice.record
        table.add_row(
            Text(entry.name),
            f"{record.speech_seconds or 0:.1f} s",
            Text(", ".join(converters_of(record))),
            Text("?" if record.created is None else record.created),
            str(len(record.warnings)),
            consent_kind(record.consent),
        )
    out.print(table)


@app.command("show")
def voices_show(name: str, voices_dir: VoicesDirOption = None, config: ConfigOption = None) -> None:
    """Show everything stored about a voice: its consent record first, then all of voice.json."""
    cfg = settings(config)
    voice = library(cfg, voices_dir).get(name)
    out.print(Text.assemble((voice.name, "bold"), f" in {voice.folder}"))
    consent = voice.record.consent
    say(consent_summary(consent), "consent:", "bold")
    if isinstance(consent, dict) and consent.get("kind") == "spoken":
        say(f"expected: {consent.get('expected', '')}", "  ")
        say(f"heard:    {consent.get('heard') or consent.get('transcript', '')}", "  ")
        wer, limit = consent.get("wer", 0), consent.get("threshold", 0)
        say(f"word error rate {wer:.0%} (at most {limit:.0%}), at {consent.get('time', '')}", "  ")
        check = consent.get("speaker_check")
        detail = ""
        if isinstance(check, dict) and isinstance(check.get("score"), (int, float)):
            least = check.get("threshold", 0)
            detail = f": similarity {check['score']:.2f} (at least {least:.2f}), {check.get('pieces')} pieces"
        say(f"speaker:  {speaker_summary(check)}{detail}", "  ")
    mark = "outputs carry an inaudible provenance mark" if cfg.watermark else "off (watermark: false)"
    say(mark, "watermark:", "bold")
    out.print_json(json.dumps(voice.record.as_json()))


@app.command("rm")
def voices_rm(
    name: str,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    voices_dir: VoicesDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Delete a voice (asks first unless --yes)."""
    lib = _library(voices_dir, config)
    lib.entry(name)  # a clear error for an unknown name before asking (a damaged voice can be removed)
    if not yes:
        if not sys.stdin.isatty():
            raise UserError(f"not removing {name!r} without confirmation: add --yes")
        if not typer.confirm(f"Delete the voice {name!r} from {lib.root}?"):
            say("kept")
            raise typer.Exit(1)
    lib.remove(name)
    say(f"removed {name!r}")


@app.command("rename")
def voices_rename(old: str, new: str, voices_dir: VoicesDirOption = None, config: ConfigOption = None) -> None:
    """Rename a voice."""
    voice = _library(voices_dir, config).rename(old, new)
    say(f"renamed {old!r} to {voice.name!r}")


@app.command("export")
def voices_export(
    name: str,
    file: Annotated[Path, typer.Argument(help="Archive to write (.tar.gz), or a folder.")],
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file of that name.")] = False,
    voices_dir: VoicesDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Pack a voice into an archive to move it to another machine."""
    if str(file) == "-":
        raise UserError("voices export writes a file: give its name (an archive is not written to standard output)")
    archive = _library(voices_dir, config).export(name, file, force=force)
    say(f"exported {name!r} to {archive}")


@app.command("import")
def voices_import(
    file: Annotated[Path, typer.Argument(help="An archive made by `voiceclone voices export`.")],
    name: Annotated[Optional[str], typer.Option("--name", "-n", help="Store under another name.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a voice of the same name.")] = False,
    voices_dir: VoicesDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Add a voice from an exported archive (checked: nothing may land outside the library)."""
    if str(file) == "-":
        raise UserError(
            "voices import reads a file: give its name (an archive is not read from standard input; a file named - "
            "is ./-)"
        )
    voice = _library(voices_dir, config).import_archive(file, name=name, force=force)
    say(f"imported {voice.name!r} into {voice.folder}")
    say(consent_summary(voice.record.consent), "consent:", "bold")  # as recorded elsewhere: never re-checked here
