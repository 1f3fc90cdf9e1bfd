"""The `voiceclone` command line: parses, calls the layers below, renders with rich. Nothing else."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from . import __version__
from .config import load_settings
from .errors import UserError
from .models import DEFAULT_VERSION, MODELS_DIR_ENV, SOURCES, ModelStore
from .openvoice import CheckpointError
from .voices import VOICES_DIR_ENV, VoiceLibrary, default_voices_dir

out = Console()
err = Console(stderr=True)

app = typer.Typer(
    name="voiceclone",
    help="Talk with an AI in a cloned voice: enroll a voice, hear it speak, run live voice bots.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
models_app = typer.Typer(help="Converter checkpoints (OpenVoice V1/V2): download, list, locate.", no_args_is_help=True)
app.add_typer(models_app, name="models")
voices_app = typer.Typer(help="The voice library: list, show, remove, rename, export, import.", no_args_is_help=True)
app.add_typer(voices_app, name="voices")

ConfigOption = Annotated[
    Optional[Path], typer.Option("--config", "-c", help="YAML config file (reads models_dir, voices_dir).")
]
ModelsDirOption = Annotated[
    Optional[Path],
    typer.Option(
        "--models-dir",
        envvar=MODELS_DIR_ENV,
        help="Keep converters in this folder instead of the Hugging Face cache.",
        show_envvar=True,
    ),
]
VersionOption = Annotated[str, typer.Option("--version", "-v", help=f"Converter version: {', '.join(SOURCES)}.")]
VoicesDirOption = Annotated[
    Optional[Path],
    typer.Option("--voices-dir", envvar=VOICES_DIR_ENV, show_envvar=True, help="The voice library folder [default: ./voices]."),
]
ConverterOption = Annotated[
    Optional[Path],
    typer.Option("--converter", help="A converter folder (config.json + checkpoint.pth) to use instead of an installed one."),
]
ConverterVersionOption = Annotated[
    str, typer.Option("--converter-version", help=f"Installed converter version to use: {', '.join(SOURCES)}.")
]
DeviceOption = Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")]


def _version_callback(value: bool) -> None:
    if value:
        out.print(f"voiceclone {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version_callback, is_eager=True, help="Show the version and exit.")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", help="Log what happens, for troubleshooting.")] = False,
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


def _store(models_dir: Path | None, config: Path | None) -> ModelStore:
    settings = load_settings(config)
    return ModelStore.from_settings(models_dir or settings.models_dir)


def _library(voices_dir: Path | None, config: Path | None) -> VoiceLibrary:
    return VoiceLibrary(default_voices_dir(voices_dir, load_settings(config).voices_dir))


def _converter(converter: Path | None, version: str, models_dir: Path | None, config: Path | None, device: str):
    """Load the converter a command asked for: an explicit folder, else the installed version."""
    from .cache import file_sha256
    from .openvoice import ToneColorConverter

    folder = Path(converter) if converter else _store(models_dir, config).require(version)
    with err.status(f"Loading the converter from {folder} ..."):
        checkpoint = folder / "checkpoint.pth"
        known = file_sha256(checkpoint) if checkpoint.is_file() else None
        try:
            return ToneColorConverter.load(folder, device=device, checkpoint_sha256=known)
        except ValueError as exc:  # a bad --device
            raise UserError(str(exc)) from None


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


@models_app.command("list")
def models_list(config: ConfigOption = None, models_dir: ModelsDirOption = None) -> None:
    """List the converter versions, whether each is installed, where, and its size."""
    store = _store(models_dir, config)
    installed = {c.version: c for c in store.installed()}
    table = Table(title=f"Converters in {store.describe()}", title_justify="left")
    table.add_column("version")
    table.add_column("status")
    table.add_column("size", justify="right")
    table.add_column("location")
    for version, source in SOURCES.items():
        found = installed.get(version)
        if found:
            table.add_row(version, "[green]installed[/]", _size(found.size_bytes), str(found.folder))
        else:
            hint = f"voiceclone models download --version {version}"
            table.add_row(version, "[yellow]not installed[/]", "-", f"[dim]{hint}[/]")
    out.print(table)


@models_app.command("path")
def models_path(
    version: VersionOption = DEFAULT_VERSION, config: ConfigOption = None, models_dir: ModelsDirOption = None
) -> None:
    """Print the folder of an installed converter (config.json + checkpoint.pth)."""
    print(_store(models_dir, config).require(version))


@models_app.command("download")
def models_download(
    version: VersionOption = DEFAULT_VERSION,
    force: Annotated[bool, typer.Option("--force", help="Download again even if it is installed.")] = False,
    config: ConfigOption = None,
    models_dir: ModelsDirOption = None,
) -> None:
    """Download a converter from the Hugging Face hub (resumes, then checks every tensor)."""
    store = _store(models_dir, config)
    source = SOURCES.get(version.lower())
    if source and not force and store.locate(version):
        out.print(f"{version} converter already installed: {store.locate(version)}")
        return
    if source:
        err.print(f"Downloading the {version} converter from {source.repo_id} into {store.describe()} ...")
    folder = store.download(version, force=force)
    out.print(f"[green]ready[/]: {version} converter in {folder}")


@app.command()
def enroll(
    samples: Annotated[list[Path], typer.Argument(help="Recordings of one voice: WAV, FLAC, OGG or MP3.", show_default=False)],
    name: Annotated[Optional[str], typer.Option("--name", "-n", help="Voice name [default: the first file's name].")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a voice of the same name.")] = False,
    consent: Annotated[Optional[str], typer.Option("--consent", help="The speaker's consent, stored with the voice.")] = None,
    voices_dir: VoicesDirOption = None,
    converter: ConverterOption = None,
    converter_version: ConverterVersionOption = DEFAULT_VERSION,
    models_dir: ModelsDirOption = None,
    device: DeviceOption = "auto",
    config: ConfigOption = None,
) -> None:
    """Turn recordings of a voice into a voice in the library."""
    from .enrollment import choose_name, create, prepare
    from .openvoice.config import ConverterConfig

    library = _library(voices_dir, config)
    folder = converter or _store(models_dir, config).require(converter_version)
    voice_name = choose_name(library, samples, name, force)
    rate = ConverterConfig.from_file(folder / "config.json").sampling_rate
    with err.status("Reading the recordings ...") as status:
        sample = prepare(samples, rate, on_step=lambda text: status.update(f"{text} ..."))
    conv = _converter(folder, converter_version, models_dir, config, device)
    with err.status("Making the voice ..."):
        voice = create(library, voice_name, sample, conv, force=force, consent=consent)
    q = sample.quality
    table = Table(title=f"Voice {voice.name!r}", title_justify="left", show_header=False)
    table.add_row("recording", f"{q.duration_s:.1f} s in {len(sample.sources)} file(s)")
    table.add_row("speech", f"{q.speech_s:.1f} s")
    table.add_row("level", f"{q.speech_level_dbfs:.0f} dBFS (speech)")
    table.add_row("background", f"{q.noise_level_dbfs:.0f} dBFS, {q.snr_db:.0f} dB below speech")
    table.add_row("clipping", f"{q.clipped_fraction:.2%} of samples")
    table.add_row("converter", f"{conv.version}")
    out.print(table)
    for warning in q.warnings():
        err.print(f"[yellow]warning:[/] {warning}", highlight=False)
    out.print(f"[green]enrolled[/] {voice.name!r} in {voice.folder}", highlight=False)


@voices_app.command("list")
def voices_list(voices_dir: VoicesDirOption = None, config: ConfigOption = None) -> None:
    """List the enrolled voices."""
    library = _library(voices_dir, config)
    names = library.names()
    if not names:
        out.print(f"No voices in {library.root} yet: enroll one with `voiceclone enroll SAMPLE.wav --name NAME`.")
        return
    table = Table(title=f"Voices in {library.root}", title_justify="left")
    for column in ("name", "speech", "converters", "created", "warnings", "consent"):
        table.add_column(column)
    for name in names:
        meta = library.get(name).meta
        table.add_row(
            name,
            f"{meta.get('speech_seconds', 0):.1f} s",
            ", ".join(sorted(meta.get("embeddings", {}))),
            str(meta.get("created", "?")),
            str(len(meta.get("warnings", []))),
            "yes" if meta.get("consent") else "-",
        )
    out.print(table)


@voices_app.command("show")
def voices_show(name: str, voices_dir: VoicesDirOption = None, config: ConfigOption = None) -> None:
    """Show everything stored about a voice."""
    import json

    voice = _library(voices_dir, config).get(name)
    out.print(f"[bold]{voice.name}[/] in {voice.folder}")
    out.print_json(json.dumps(voice.meta))


@voices_app.command("rm")
def voices_rm(
    name: str,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    voices_dir: VoicesDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Delete a voice (asks first unless --yes)."""
    library = _library(voices_dir, config)
    library.get(name)  # a clear error for an unknown name before asking
    if not yes:
        if not sys.stdin.isatty():
            raise UserError(f"not removing {name!r} without confirmation: add --yes")
        if not typer.confirm(f"Delete the voice {name!r} from {library.root}?"):
            out.print("kept")
            raise typer.Exit(1)
    library.remove(name)
    out.print(f"removed {name!r}")


@voices_app.command("rename")
def voices_rename(old: str, new: str, voices_dir: VoicesDirOption = None, config: ConfigOption = None) -> None:
    """Rename a voice."""
    voice = _library(voices_dir, config).rename(old, new)
    out.print(f"renamed {old!r} to {voice.name!r}")


@voices_app.command("export")
def voices_export(
    name: str,
    file: Annotated[Path, typer.Argument(help="Archive to write (.tar.gz), or a folder.")],
    voices_dir: VoicesDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Pack a voice into an archive to move it to another machine."""
    archive = _library(voices_dir, config).export(name, file)
    out.print(f"exported {name!r} to {archive}")


@voices_app.command("import")
def voices_import(
    file: Annotated[Path, typer.Argument(help="An archive made by `voiceclone voices export`.")],
    name: Annotated[Optional[str], typer.Option("--name", "-n", help="Store under another name.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a voice of the same name.")] = False,
    voices_dir: VoicesDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Add a voice from an exported archive (checked: nothing may land outside the library)."""
    voice = _library(voices_dir, config).import_archive(file, name=name, force=force)
    out.print(f"imported {voice.name!r} into {voice.folder}")


def _read_text(text: str | None, file: Path | None) -> str:
    if text is not None and file is not None:
        raise UserError("give the text as an argument or with --file, not both")
    if file is not None:
        try:
            return file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise UserError(f"{file}: file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"{file}: cannot read it as text ({exc})") from None
    if text is None or text == "-":
        if sys.stdin is None or (sys.stdin.isatty() and text is None):
            raise UserError("nothing to say: give TEXT, --file FILE, or pipe text in")
        return sys.stdin.read()
    return text


@app.command()
def speak(
    text: Annotated[Optional[str], typer.Argument(help="What to say ('-' or nothing: read standard input).", show_default=False)] = None,
    voice: Annotated[Optional[str], typer.Option("--voice", help="An enrolled voice's name, or an audio file to clone on the fly.")] = None,
    file: Annotated[Optional[Path], typer.Option("--file", "-f", help="Read the text from a file.")] = None,
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="WAV file to write, or '-' for raw 16-bit PCM on standard output.")] = None,
    play: Annotated[bool, typer.Option("--play", help="Play on the default output device as it is made.")] = False,
    tau: Annotated[Optional[float], typer.Option("--tau", help="Conversion sampling temperature [default: 0.3; 0 = deterministic].")] = None,
    engine: Annotated[Optional[str], typer.Option("--engine", "-e", help="Base voice engine: piper or openai [default: piper].")] = None,
    piper_voice: Annotated[Optional[Path], typer.Option("--piper-voice", help="A Piper .onnx voice [default: the bundled en_US joe voice].")] = None,
    no_clone: Annotated[bool, typer.Option("--no-clone", help="Speak the base voice, unconverted (for A/B listening).")] = False,
    sample_rate: Annotated[int, typer.Option("--sample-rate", help="Output sample rate.", min=8000, max=192000)] = 22050,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Seed for reproducible output with tau > 0.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-V", help="Show timing for every sentence.")] = False,
    voices_dir: VoicesDirOption = None,
    converter: ConverterOption = None,
    converter_version: Annotated[Optional[str], typer.Option("--converter-version", help="v1 or v2 [default: v2].")] = None,
    models_dir: ModelsDirOption = None,
    device: Annotated[Optional[str], typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")] = None,
    config: ConfigOption = None,
) -> None:
    """Speak text in a cloned voice, streaming: each chunk is written or played as soon as it exists."""
    from .speaking import speak_to
    from .tts.sentences import split_sentences

    settings = load_settings(config)
    tts = settings.tts
    sentences = split_sentences(_read_text(text, file))
    if not sentences:
        raise UserError("nothing to say: the text is empty")
    voice = voice or tts.voice
    if not no_clone and not voice:
        raise UserError("say whose voice: --voice NAME (see `voiceclone voices list`) or --voice sample.wav")
    if output is None and not play:
        raise UserError("say where the audio goes: -o FILE.wav, -o - (raw PCM on standard output), or --play")
    if output == "-" and sys.stdout.isatty():
        raise UserError("-o - writes raw PCM: pipe it into a program (e.g. `| aplay -f S16_LE -r 22050`) or use -o FILE.wav")
    tau = tts.tau if tau is None else tau
    if not 0 <= tau <= 2:
        raise UserError(f"--tau must be between 0 and 2, got {tau}")

    library = _library(voices_dir, config)
    if not no_clone:
        _check_voice_exists(library, voice)
    sinks = _open_sinks(output, play, sample_rate)  # an unwritable output fails before any model loads
    try:
        engine_name = engine or tts.engine
        with err.status("Loading the base voice ..."):
            base = _engine(tts, engine_name, piper_voice)
        if no_clone:
            source, source_rate, label = (lambda s: iter([base.synthesize(s)])), base.sample_rate, f"{engine_name} base voice"
        else:
            from .cloned import ClonedVoice
            from .enrollment import target_embedding

            conv = _converter(
                converter or tts.converter.folder, converter_version or tts.converter.version, models_dir, config,
                device or tts.converter.device,
            )
            with err.status("Preparing the voice ..."):
                target, label = target_embedding(library, voice, conv)
                cloned = ClonedVoice(base, conv, target, tau=tau, seed=seed if seed is not None else tts.seed)
            source, source_rate = cloned.speak, cloned.sample_rate
    except BaseException:
        for sink in sinks:
            sink.close(False)
        raise
    report = (lambda line: err.print(f"[dim]{line}[/]", highlight=False)) if verbose else None
    stats = speak_to(sentences, source, source_rate, sinks, sample_rate, report=report)
    where = "standard output" if output == "-" else (output or "the speakers")
    first = f"{stats.first_audio_s * 1000:.0f} ms" if stats.first_audio_s is not None else "-"
    err.print(
        f"[green]spoke[/] {stats.sentences} sentence(s), {stats.audio_s:.1f} s in {label} to {where}: "
        f"first audio {first}, real-time factor {stats.real_time_factor:.2f}",
        highlight=False,
    )


def _engine(tts, engine_name: str, piper_voice: Path | None = None):
    """The base TTS engine a `tts:` config section describes."""
    from .tts import OpenAISettings, PiperSettings, make_engine

    p, o = tts.piper, tts.openai
    return make_engine(
        engine_name,
        piper=PiperSettings(piper_voice or p.voice, p.speaker, p.length_scale, p.noise_scale, p.noise_w_scale),
        openai=OpenAISettings(o.model, o.voice, o.base_url, None, o.timeout_s, o.instructions),
    )


def _check_voice_exists(library: VoiceLibrary, voice: str) -> None:
    """Fail fast on a voice that is neither an audio file nor an enrolled name."""
    from .enrollment import AUDIO_SUFFIXES

    path = Path(voice).expanduser()
    if path.suffix.lower() in AUDIO_SUFFIXES or "/" in voice:
        if not path.exists():
            raise UserError(f"{path}: voice file not found")
        return
    if not path.exists():
        library.get(voice)


def _open_sinks(output: str | None, play: bool, sample_rate: int) -> list:
    from .speaking import PlaybackSink, RawSink, WavSink

    sinks: list = []
    try:
        if output == "-":
            sinks.append(RawSink())
        elif output is not None:
            sinks.append(WavSink(Path(output), sample_rate))
        if play:
            sinks.append(PlaybackSink(sample_rate))
    except BaseException:
        for sink in sinks:
            sink.close(False)
        raise
    return sinks


config_app = typer.Typer(help="Bot config files: check them before running.", no_args_is_help=True)
app.add_typer(config_app, name="config")

TransportOption = Annotated[
    Optional[str], typer.Option("--transport", "-t", help="daily, webrtc or local (overrides the config file).")
]
BotConfigOption = Annotated[Path, typer.Option("--config", "-c", help="The bot's YAML file (see configs/).")]


def _bot_config(config: Path, transport: str | None, voice: str | None):
    from .config import load_bot_config

    return load_bot_config(config, transport=transport, voice=voice)


@config_app.command("check")
def config_check(
    file: Annotated[Path, typer.Argument(help="A bot config file.")],
    transport: TransportOption = None,
) -> None:
    """Validate a bot config (keys, values, the environment variables it needs) without running it."""
    from .pipecat.services import check_keys

    cfg = _bot_config(file, transport, None)
    check_keys(cfg)
    stt = cfg.stt.engine + (f" ({cfg.stt.model})" if hasattr(cfg.stt, "model") else "")
    llm = cfg.llm.engine + (f" ({cfg.llm.model})" if hasattr(cfg.llm, "model") else "")
    voice = cfg.tts.voice or "none yet (give --voice when running)"
    out.print(
        f"[green]ok[/]: {file}: transport {cfg.transport.type}, stt {stt}, llm {llm}, "
        f"tts {cfg.tts.engine} in voice {voice}, converter {cfg.tts.converter.folder or cfg.tts.converter.version}",
        highlight=False,
    )


@app.command("run-bot")
def run_bot(
    config: BotConfigOption = Path("configs/offline.yaml"),
    voice: Annotated[Optional[str], typer.Option("--voice", help="An enrolled voice (overrides tts.voice).")] = None,
    transport: TransportOption = None,
    voices_dir: VoicesDirOption = None,
    models_dir: ModelsDirOption = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-V", help="Log everything Pipecat does.")] = False,
) -> None:
    """Run a live voice bot (VAD, speech-to-text, LLM, cloned voice) from a YAML config."""
    import asyncio

    from loguru import logger

    from .pipecat.services import check_keys

    cfg = _bot_config(config, transport, voice)
    if not cfg.tts.voice:
        raise UserError("say whose voice the bot speaks in: --voice NAME or tts.voice in the config")
    check_keys(cfg)  # before anything loads or connects
    library = VoiceLibrary(default_voices_dir(voices_dir, cfg.voices_dir))
    _check_voice_exists(library, cfg.tts.voice)
    logger.remove()
    if verbose:
        logger.add(sys.stderr, level="DEBUG")
    else:  # our own one-line reports (errors, voice switches); Pipecat's details only with --verbose
        logger.add(
            sys.stderr, level="INFO", format="{time:HH:mm:ss} {message}",
            filter=lambda record: record["name"].startswith("voiceclone"),
        )
    conv = _converter(cfg.tts.converter.folder, cfg.tts.converter.version, models_dir or cfg.models_dir, None, cfg.tts.converter.device)
    with err.status("Loading the voice ..."):
        from .pipecat.bot import prepare_voice
        from .pipecat.serve import run

        engine = _engine(cfg.tts, cfg.tts.engine)
        resources = prepare_voice(cfg, conv, engine, library)
    try:
        asyncio.run(run(cfg, resources, lambda text: err.print(f"[bold green]{text}[/]", highlight=False)))
    except KeyboardInterrupt:
        pass
    err.print("bot stopped")


def main() -> None:
    """Entry point: run the app; errors a user can fix end in one line and exit code 1."""
    from dotenv import find_dotenv, load_dotenv

    load_dotenv(find_dotenv(usecwd=True), override=False)  # .env fills what the environment does not set
    try:
        app()
    except (UserError, CheckpointError) as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
