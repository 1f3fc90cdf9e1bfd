"""`voiceclone detect`: does each file carry voiceclone's provenance mark (PerTh), and how sure is the detector?"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from voiceclone.cli.common import err, error, out, say


def detect(
    files: Annotated[
        list[Path], typer.Argument(help="Audio files: WAV, FLAC, OGG or MP3, at any rate.", show_default=False)
    ],
    json_out: Annotated[
        bool, typer.Option("--json", help="Print a JSON list of {file, present, confidence, seconds}.")
    ] = False,
) -> None:
    """Say for each file whether it carries the watermark voiceclone puts on what it speaks.

    Exit code 0 when every file was read (the verdicts are in the output), 1 when any could not be read (each
    such file gets an error line; the others are still reported).
    """
    from voiceclone.audio.reader import AudioError
    from voiceclone.responsible.watermark import MIN_RELIABLE_SECONDS, THRESHOLD, detect_file, load_model

    with err.status("Loading the watermark detector ..."):
        load_model()  # a missing or damaged resemble-perth is one error line for the whole run
    results: list[dict] = []
    with err.status("Listening for the mark ...") as status:
        for index, path in enumerate(files, 1):
            status.update(Text(f"Listening for the mark in {path} ({index}/{len(files)}) ..."))
            try:
                found = detect_file(path)
            except AudioError as exc:
                results.append({"file": str(path), "error": str(exc)})
                continue
            results.append({"file": str(path), **found.to_dict()})
    failed = [r for r in results if "error" in r]
    if json_out:
        typer.echo(json.dumps(results))  # plain JSON on standard output, whatever it is connected to
    else:
        _table(results, THRESHOLD, MIN_RELIABLE_SECONDS)
    for result in failed:
        error(result["error"])
    if failed:
        raise typer.Exit(1)


def _table(results: list[dict], threshold: float, min_seconds: float) -> None:
    readable = [r for r in results if "error" not in r]
    if not readable:
        return
    table = Table(box=None)
    table.add_column("file", overflow="fold")  # a long name wraps; it is never cut short
    table.add_column("mark")
    table.add_column("confidence", justify="right")
    table.add_column("seconds", justify="right")
    table.add_column("note")
    for r in readable:
        mark = Text("present", style="green") if r["present"] else Text("absent")
        note = f"under {min_seconds:g} s: too short to tell" if r["seconds"] < min_seconds else ""
        table.add_row(Text(r["file"]), mark, f"{r['confidence']:.3f}", f"{r['seconds']:.1f}", note)
    out.print(table)
    say(f"PerTh watermark: present at a confidence of {threshold:g} or more (0 to 1).")
