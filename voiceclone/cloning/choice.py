"""Which converter a run gets (`auto | openvoice | matcher`), decided now and loaded when wanted."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from voiceclone.cloning.checkpoints import DEFAULT_VERSION
from voiceclone.cloning.conversion import Conversion
from voiceclone.cloning.matcher_conversion import MatcherConversion
from voiceclone.cloning.openvoice_conversion import load_openvoice
from voiceclone.errors import UserError


def openvoice_folder(settings, store) -> Path | None:
    """The OpenVoice converter folder the settings name (`folder`, else the installed `version`), if any."""
    if settings.folder:
        return Path(settings.folder).expanduser()
    return store.locate(settings.version)


def choose(settings, store, notice: Callable[[str], None] | None = None) -> Callable[[], Conversion]:
    """Which converter to use, as a loader (call it to load): decided now, loaded when wanted.

    Args:
        settings: The `tts.converter` settings (engine auto/openvoice/matcher, version, folder, device).
        store: The converter store (`ModelStore`), where OpenVoice checkpoints are installed.
        notice: Told once, in one line, when `auto` falls back to the matcher.

    Returns:
        A function that loads the chosen converter.

    Raises:
        UserError: `openvoice` asked for and not installed (the store's message says how to get it).
    """
    engine = settings.engine
    if engine == "matcher":
        if settings.folder:
            raise UserError("--converter-dir names an OpenVoice converter: use it with --converter openvoice or auto")
        _matcher_on_cpu(settings.device, notice)
        return MatcherConversion
    folder = openvoice_folder(settings, store)
    if folder is None:
        if engine == "openvoice":
            store.require(settings.version)  # raises: how to download it
        if notice is not None:
            flag = "" if settings.version == DEFAULT_VERSION else f" --version {settings.version}"
            notice(
                f"no OpenVoice {settings.version} converter installed: using the built-in voice matcher "
                f"(get OpenVoice with `voiceclone models download{flag}`)"
            )
        _matcher_on_cpu(settings.device, notice)
        return MatcherConversion
    return lambda: load_openvoice(folder, settings.device)


def _matcher_on_cpu(device: str, notice: Callable[[str], None] | None) -> None:
    """Say so when a device was asked for that the matcher cannot use: it is numpy and WORLD, on the CPU."""
    if notice is not None and device not in ("auto", "cpu"):
        notice(f"the voice matcher runs on the CPU: --device {device} is for the OpenVoice converter")
