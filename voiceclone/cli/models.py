"""`voiceclone models`: converter checkpoints (OpenVoice V1/V2): download, list, locate."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from voiceclone.cli.common import ConfigOption, ModelsDirOption, err, esc, out, say, settings, store
from voiceclone.cloning.checkpoints import DEFAULT_VERSION, SOURCES

app = typer.Typer(help="Converter checkpoints (OpenVoice V1/V2): download, list, locate.", no_args_is_help=True)

VersionOption = Annotated[str, typer.Option("--version", "-v", help=f"Converter version: {', '.join(SOURCES)}.")]


@app.command("list")
def models_list(config: ConfigOption = None, models_dir: ModelsDirOption = None) -> None:
    """List the converter versions, whether each is installed, where, and its size."""
    where = store(settings(config), models_dir)
    installed = {c.version: c for c in where.installed()}
    table = Table(title=Text(f"Converters in {where.describe()}"), title_justify="left")
    for column in ("version", "status", "size", "location"):
        table.add_column(column, justify="right" if column == "size" else "left")
    for version in SOURCES:
        found = installed.get(version)
        if found:
            table.add_row(version, "[green]installed[/]", f"{found.size_bytes / 1e6:.1f} MB", Text(str(found.folder)))
        else:
            hint = f"voiceclone models download --version {version}"
            table.add_row(version, "[yellow]not installed[/]", "-", Text(hint, style="dim"))
    out.print(table)


@app.command("path")
def models_path(
    version: VersionOption = DEFAULT_VERSION, config: ConfigOption = None, models_dir: ModelsDirOption = None
) -> None:
    """Print the folder of an installed converter (config.json + checkpoint.pth)."""
    print(store(settings(config), models_dir).require(version))


@app.command("download")
def models_download(
    version: VersionOption = DEFAULT_VERSION,
    force: Annotated[bool, typer.Option("--force", help="Download again even if it is installed.")] = False,
    config: ConfigOption = None,
    models_dir: ModelsDirOption = None,
) -> None:
    """Download a converter from the Hugging Face hub (resumes, then checks every tensor)."""
    where = store(settings(config), models_dir)
    source = SOURCES.get(version.lower())
    if source and not force and where.locate(version):
        say(f"{version} converter already installed: {where.locate(version)}")
        return
    if source:
        err.print(f"Downloading the {esc(version)} converter from {source.repo_id} into {esc(where.describe())} ...")
    folder = where.download(version, force=force)
    say(f"{version} converter in {folder}", "ready:", "green")
