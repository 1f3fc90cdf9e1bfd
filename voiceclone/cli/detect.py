"""`voiceclone detect`: does each file carry voiceclone's provenance mark (PerTh), where, and how sure is it?"""

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
        bool,
        typer.Option(
            "--json",
            help="Print a JSON list of {file, present, confidence, seconds, too_short, stretches: [{start, end, "
            "confidence}]}.",
        ),
    ] = False,
) -> None:
    """Say for each file whether it carries the watermark voiceclone puts on what it speaks, and where.

    A file "contains marked audio" when the whole of it is marked or any stretch of a second or more is; the
    stretches are listed with their start and end times (a clone spliced into a real recording shows up there).
    Exit code 0 when every file was read (the verdicts are in the output), 1 when any could not be read (each
    such file gets an error line; the others are still reported).
    """
    from voiceclone.audio.reader import AudioError
    from voiceclone.responsible.detection import MIN_RELIABLE_SECONDS, detect_file
    from voiceclone.responsible.watermark import load_model

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
        _table(results, MIN_RELIABLE_SECONDS)
    for result in failed:
        error(result["error"])
    if failed:
        raise typer.Exit(1)


def _table(results: list[dict], min_seconds: float) -> None:
    readable = [r for r in results if "error" not in r]
    if not readable:
        return
    table = Table(box=None)
    table.add_column("file", overflow="fold")  # a long name wraps; it is never cut short
    table.add_column("mark")
    table.add_column("confidence", justify="right")
    table.add_column("seconds", justify="right")
    table.add_column("where (seconds, confidence)", overflow="fold")
    for r in readable:
        mark = Text("present", style="green") if r["present"] else Text("absent")
        where = _where(r["stretches"], r["seconds"])
        if r["seconds"] < min_seconds:
            mark, where = Text("unknown", style="yellow"), f"under {min_seconds:g} s: too short to tell"
        table.add_row(Text(r["file"]), mark, f"{r['confidence']:.3f}", f"{r['seconds']:.1f}", where)
    out.print(table)
    say("PerTh watermark: 'present' when the whole file or any stretch of a second or more carries it.")


def _where(stretches: list[dict], seconds: float, shown: int = 4) -> str:
    """The marked stretches in a few words: "all", or "13.3-15.4 (1.00), ..." with a count of the rest."""
    if not stretches:
        return ""
    if len(stretches) == 1 and stretches[0]["start"] <= 0.5 and stretches[0]["end"] >= seconds - 0.5:
        return f"all ({stretches[0]['confidence']:.2f})"
    parts = [f"{s['start']:.1f}-{s['end']:.1f} ({s['confidence']:.2f})" for s in stretches[:shown]]
    if len(stretches) > shown:
        parts.append(f"and {len(stretches) - shown} more (--json lists all)")
    return ", ".join(parts)
