"""`voiceclone speak`: text in a cloned voice (or the base voice), streamed to a file, a pipe or the speakers."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

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
    outside_library,
    progress_bar,
    say,
    settings,
)
from voiceclone.errors import UserError
from voiceclone.openvoice.sampling import TAU_DEFAULT, TAU_MAX
from voiceclone.speak.playback import PlaybackSink
from voiceclone.speak.run import speak_to
from voiceclone.speak.sinks import RawSink, check_output_file, file_sink


def speak(
    text: Annotated[
        Optional[str], typer.Argument(help="What to say ('-' or nothing: read standard input).", show_default=False)
    ] = None,
    voice: Annotated[
        Optional[str], typer.Option("--voice", help="An enrolled voice's name, or an audio file to clone on the fly.")
    ] = None,
    file: Annotated[Optional[Path], typer.Option("--file", "-f", help="Read the text from a file.")] = None,
    output: Annotated[
        Optional[str],
        typer.Option(
            "--output",
            "-o",
            help="File to write: .wav, .flac, .ogg or .mp3 by its name (WAV without a suffix), or '-' for raw "
            "16-bit PCM on standard output.",
        ),
    ] = None,
    play: Annotated[bool, typer.Option("--play", help="Play on the default output device as it is made.")] = False,
    tau: Annotated[
        Optional[float],
        typer.Option(
            "--tau",
            help=f"Conversion sampling temperature, 0 to {TAU_MAX:g} (0 = deterministic) [default: {TAU_DEFAULT:g}].",
        ),
    ] = None,
    engine: Annotated[
        Optional[str], typer.Option("--engine", "-e", help="Base voice engine: piper or openai [default: piper].")
    ] = None,
    piper_voice: Annotated[
        Optional[Path],
        typer.Option("--piper-voice", help="A Piper .onnx voice [default: the bundled en_US joe voice]."),
    ] = None,
    no_clone: Annotated[
        bool, typer.Option("--no-clone", help="Speak the base voice, unconverted (for A/B listening).")
    ] = False,
    sample_rate: Annotated[
        int, typer.Option("--sample-rate", help="Output sample rate in Hz.", min=8000, max=192000)
    ] = 22050,
    seed: Annotated[
        Optional[int],
        typer.Option(
            "--seed",
            help="Make the output reproducible: seeds the conversion noise and turns Piper's own random "
            "variation off (same seed, same file).",
        ),
    ] = None,
    no_watermark: Annotated[
        bool, typer.Option("--no-watermark", help="Leave out the inaudible provenance mark (on by default).")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-V", help="Show timing for every sentence.")] = False,
    voices_dir: VoicesDirOption = None,
    converter: ConverterOption = None,
    converter_dir: ConverterDirOption = None,
    converter_version: ConverterVersionOption = None,
    models_dir: ModelsDirOption = None,
    device: DeviceOption = None,
    config: ConfigOption = None,
) -> None:
    """Speak text in a cloned voice, streaming: each chunk is written or played as soon as it exists."""
    from voiceclone.voices.lookup import check_consent, check_voice_given

    cfg = settings(
        config,
        tts__voice=("--voice", voice),
        tts__tau=("--tau", tau),
        tts__engine=("--engine", engine),
        tts__seed=("--seed", seed),
        tts__piper__voice=("--piper-voice", piper_voice),
        tts__converter__engine=("--converter", converter),
        tts__converter__folder=("--converter-dir", converter_dir),
        tts__converter__version=("--converter-version", converter_version),
        tts__converter__device=("--device", device),
        watermark=("--no-watermark", False if no_watermark else None),
    )
    words = _read_text(text, file)
    if not words.strip():
        raise UserError("nothing to say: the text is empty")
    check_voice_given(cfg.tts, no_clone)
    _check_output(output, play, inputs=[cfg.tts.voice, file])
    lib = library(cfg, voices_dir)
    outside_library(output, lib.root)
    if not no_clone:
        check_consent(cfg.consent, lib, cfg.tts.voice)  # an unknown or refused voice fails before anything loads
    # The layers that do the work bring torch and Pipecat (2 s): imported once the command's inputs are good.
    from voiceclone.cloning.speaker import base_engine, base_speaker, cloned_speaker, load_watermarker
    from voiceclone.tts.sentences import split_sentences  # imports Pipecat, whose banner must not show at start-up

    sentences = split_sentences(words)  # not empty: `words` holds more than white space
    sinks = _open_sinks(output, play, sample_rate)  # so does an unwritable output
    try:
        with err.status("Loading the base voice ..."):
            base = base_engine(cfg.tts)
        if no_clone:
            speaker = base_speaker(base, cfg.tts.engine)
        else:
            conversion = conversion_loader(cfg, models_dir)()
            with err.status("Preparing the voice ..."):
                marker = load_watermarker(cfg.watermark)
                speaker = cloned_speaker(cfg.tts, base, lib, conversion, marker)
    except BaseException:
        for sink in sinks:
            sink.close(False)
        raise
    report = (lambda line: say(line, to_err=True)) if verbose else None
    shown = err.is_terminal and not verbose and len(sentences) > 1
    fields = "sentences, {task.fields[audio]:.1f} s of audio"
    with progress_bar(len(sentences), shown, "speaking", fields, audio=0.0) as update:
        progress = (lambda done, audio_s: update(done, audio=audio_s)) if update else None
        stats = speak_to(
            sentences, speaker.speak, speaker.sample_rate, sinks, sample_rate, report=report, progress=progress
        )
    where = "standard output" if output == "-" else (output or "the speakers")
    first = f"{stats.first_audio_s * 1000:.0f} ms" if stats.first_audio_s is not None else "-"
    say(
        f"{stats.sentences} sentence(s), {stats.audio_s:.1f} s in {speaker.label} to {where}: "
        f"first audio {first}, real-time factor {stats.real_time_factor:.2f}{_mark_note(cfg, no_clone)}",
        "spoke",
        "green",
        to_err=True,
    )


def _mark_note(cfg, no_clone: bool) -> str:
    """How the output is marked, for the run's last line."""
    if no_clone:
        return ""
    return "; watermarked (PerTh)" if cfg.watermark else "; not watermarked (--no-watermark)"


def _read_text(text: str | None, file: Path | None) -> str:
    if text is not None and file is not None:
        raise UserError("give the text as an argument or with --file, not both")
    if file is not None:
        try:
            return file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise UserError(f"{file}: file not found") from None
        except IsADirectoryError:
            raise UserError(f"{file}: is a folder, not a text file") from None
        except UnicodeDecodeError as exc:
            raise UserError(f"{file}: not UTF-8 text (byte {exc.start}); --file reads the text to speak") from None
        except OSError as exc:
            raise UserError(f"{file}: cannot read it ({exc.strerror or exc})") from None
    if text is None or text == "-":
        if sys.stdin is None or (sys.stdin.isatty() and text is None):
            raise UserError("nothing to say: give TEXT, --file FILE, or pipe text in")
        return sys.stdin.read()
    return text


def _check_output(output: str | None, play: bool, inputs: list = ()) -> None:
    if output is None and not play:
        raise UserError("say where the audio goes: -o FILE.wav, -o - (raw PCM on standard output), or --play")
    if output == "-" and sys.stdout.isatty():
        raise UserError(
            "-o - writes raw PCM: pipe it into a program (e.g. `| aplay -f S16_LE -r 22050`) or use -o FILE.wav"
        )
    if output not in (None, "-"):
        if output.endswith(("/", os.sep)):  # Path() drops the slash: "x.wav/" would become a file x.wav
            raise UserError(f"{output}: names a folder; give a file name such as {Path(output) / 'speech.wav'}")
        check_output_file(Path(output))
        for given in inputs:  # `--voice me.wav -o me.wav` would replace the only recording with the clone
            if given is not None and _same_file(Path(output), Path(given)):
                raise UserError(f"{output}: is also an input of this command; write the audio to another file")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and a.samefile(b)
    except OSError:
        return False


def _open_sinks(output: str | None, play: bool, sample_rate: int) -> list:
    sinks: list = []
    try:
        if output == "-":
            sinks.append(RawSink())
        elif output is not None:
            sinks.append(file_sink(Path(output), sample_rate))
        if play:
            sinks.append(PlaybackSink(sample_rate))
    except BaseException:
        for sink in sinks:
            sink.close(False)
        raise
    return sinks
