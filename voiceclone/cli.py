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


def main() -> None:
    """Entry point: run the app; errors a user can fix end in one line and exit code 1."""
    try:
        app()
    except (UserError, CheckpointError) as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
