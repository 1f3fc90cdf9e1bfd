"""`voiceclone eval`: how close is the clone to the person, and is it still understood? Base voice and clone
side by side: speaker similarity to the voice's own enrollment speech, and Whisper's word error rate."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table
from rich.text import Text

from voiceclone.cli.common import (
    ConfigOption,
    ConverterDirOption,
    DeviceOption,
    ModelsDirOption,
    VoicesDirOption,
    conversion_loader,
    err,
    library,
    out,
    outside_library,
    progress_bar,
    say,
    settings,
)
from voiceclone.voices.lookup import allowed_voice

MAX_COMPARED = 50  # other voices of the library that each clone is compared with (about 0.1 s each)


def eval_voice(
    voice: Annotated[str, typer.Argument(help="An enrolled voice's name.", show_default=False)],
    converter: Annotated[
        Optional[list[str]],
        typer.Option(
            "--converter",
            help="auto, openvoice or matcher; give it twice to compare converters [default: auto].",
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the results as JSON (for scripts).")] = False,
    output: Annotated[
        Optional[Path], typer.Option("--output", "-o", help="Keep the audio: a WAV per voice and sentence in DIR.")
    ] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Make the run reproducible (as for speak).")] = None,
    voices_dir: VoicesDirOption = None,
    converter_dir: ConverterDirOption = None,
    models_dir: ModelsDirOption = None,
    device: DeviceOption = None,
    config: ConfigOption = None,
) -> None:
    """Measure a clone: held-out sentences spoken by the base voice and the clone, compared with the person."""
    engines = converter or [None]
    cfg = settings(config, tts__seed=("--seed", seed), tts__converter__device=("--device", device))
    lib = library(cfg, voices_dir)
    enrolled = allowed_voice(lib, voice, cfg.consent)  # the clones it makes are the voice's speech too
    outside_library(output, lib.root)
    speech, rate = enrolled.speech()
    keep = _keeper(output) if output is not None else None
    # The layers that do the work bring torch and the measuring models: imported once the inputs are good.
    from voiceclone.cloning.speaker import base_engine, eval_speakers, load_watermarker
    from voiceclone.quality import evaluation, measures

    with err.status("Loading the base voice, the converter and the measuring models ..."):
        base = base_engine(cfg.tts)
        conversions = [_load(config, engine, converter_dir, models_dir, device) for engine in engines]
        speakers = eval_speakers(cfg.tts, base, lib, enrolled, conversions, load_watermarker(cfg.watermark))
        measures.load_models()
    done: dict[str, int] = {}
    with progress_bar(len(speakers) * len(evaluation.EVAL_SENTENCES), err.is_terminal, "measuring") as update:

        def progress(label: str, sentences_done: int, _total: int) -> None:
            done[label] = sentences_done
            if update:
                update(sum(done.values()), description=label)

        report = evaluation.evaluate(
            speech,
            rate,
            speakers,
            on_progress=progress,
            keep_audio=keep,
            others=_other_voices(lib, enrolled.name),
            voice_name=enrolled.name,
        )
    if json_out:
        print(json.dumps({"voice": enrolled.name, **report.to_dict()}, indent=2))
        return
    _render(enrolled.name, report)


def _load(config, engine: str | None, converter_dir, models_dir, device):
    cfg = settings(
        config,
        tts__converter__engine=("--converter", engine),
        tts__converter__folder=("--converter-dir", converter_dir),
        tts__converter__device=("--device", device),
    )
    return conversion_loader(cfg, models_dir, spinner=False)()


def _other_voices(lib, name: str) -> dict:
    """The library's other usable voices, name -> (speech, rate): what the clone could be taken for.

    At most MAX_COMPARED of them (alphabetically), so that a large library does not make `eval` slow.
    """
    others = {}
    for entry in lib.scan():
        if entry.voice is not None and entry.name != name and len(others) < MAX_COMPARED:
            others[entry.name] = entry.voice.speech()
    return others


def _keeper(folder: Path):
    """Writes each utterance to `folder` as LABEL-NN.wav (labels made safe for file names)."""
    import soundfile as sf

    from voiceclone.files import StorageError, output_folder, reporting_write_errors

    output_folder(folder)  # one line for a file, a path through a file, a read-only or impossible place

    def keep(label: str, index: int, audio, rate: int) -> None:
        name = re.sub(r"[^A-Za-z0-9]+", "-", label).strip("-")
        path = folder / f"{name}-{index + 1:02d}.wav"
        with reporting_write_errors(path):
            try:
                sf.write(path, audio, rate, subtype="PCM_16")
            except sf.LibsndfileError as exc:  # libsndfile's own errors (a full disk while encoding) are not OSErrors
                raise StorageError(f"cannot write {path}: {exc.error_string}") from None

    return keep


def _render(name: str, report) -> None:
    table = Table(title=Text(f"How close is the clone to {name!r}?"), title_justify="left")
    for column, justify in (
        ("voice", "left"),
        ("similarity", "right"),
        ("word error rate", "right"),
        ("audio", "right"),
    ):
        table.add_column(column, justify=justify)
    for row in report.rows:
        table.add_row(Text(row.label), f"{row.similarity:.3f}", f"{row.wer:.1%}", f"{row.seconds:.1f} s")
    ceiling = f"{report.ceiling:.3f}" if report.ceiling is not None else "-"
    table.add_row(Text("the person (ceiling)", style="dim"), ceiling, "", Text(report.ceiling_note or "", style="dim"))
    out.print(table)
    for row in report.rows:
        likeness = row.likeness()
        if likeness is not None:  # only with several voices in the library
            say(f"{row.label} {likeness}", "sounds like:", "bold")
    say(report.verdict(), "verdict:", "bold")
