"""Converter checkpoints on disk: where they live, which are installed, and downloading them from the hub.

By default the published converters are kept in the Hugging Face cache (shared with every other tool that
uses it, resumable, verified). `VOICECLONE_MODELS_DIR` (or `models_dir` in a config file, or `--models-dir`)
keeps them in a plain folder instead: `<dir>/openvoice-v2/{config.json,checkpoint.pth}`.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import constants, hf_hub_download, try_to_load_from_cache
from huggingface_hub.utils import disable_progress_bars, enable_progress_bars

from voiceclone.errors import UserError
from voiceclone.hub import hub_endpoint, unreachable
from voiceclone.openvoice.errors import CheckpointError

CONFIG_FILE = "config.json"
CHECKPOINT_FILE = "checkpoint.pth"

MODELS_DIR_ENV = "VOICECLONE_MODELS_DIR"
DEFAULT_VERSION = "v2"


class ModelsError(UserError):
    """A converter that is missing, cannot be fetched or fails its checks; the message says what to do."""


@dataclass(frozen=True)
class ConverterSource:
    """Where a published converter version lives on the Hugging Face hub."""

    version: str
    repo_id: str
    subfolder: str

    @property
    def files(self) -> tuple[str, str]:
        """The two files' paths inside the repository."""
        return (f"{self.subfolder}/{CONFIG_FILE}", f"{self.subfolder}/{CHECKPOINT_FILE}")


SOURCES: dict[str, ConverterSource] = {
    "v2": ConverterSource("v2", "myshell-ai/OpenVoiceV2", "converter"),
    "v1": ConverterSource("v1", "myshell-ai/OpenVoice", "checkpoints/converter"),
}


@dataclass(frozen=True)
class InstalledConverter:
    """A converter folder found on disk."""

    version: str
    folder: Path
    size_bytes: int


def source_for(version: str) -> ConverterSource:
    """The hub source of a version, or a clear error naming the choices."""
    try:
        return SOURCES[version.lower()]
    except KeyError:
        raise ModelsError(f"unknown converter version {version!r}: choose one of {', '.join(SOURCES)}") from None


class ModelStore:
    """The converters a user has: in the Hugging Face cache (`root` None) or in a folder of their choice."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root).expanduser() if root is not None else None

    @classmethod
    def from_settings(cls, models_dir: str | Path | None = None) -> ModelStore:
        """The store a command should use: an explicit folder, else `$VOICECLONE_MODELS_DIR`, else the HF cache."""
        chosen = models_dir or os.environ.get(MODELS_DIR_ENV) or None
        return cls(Path(chosen) if chosen else None)

    def describe(self) -> str:
        """Where this store keeps converters, for messages."""
        if self.root is None:
            return f"the Hugging Face cache ({constants.HF_HUB_CACHE})"
        return str(self.root)

    def folder_for(self, version: str) -> Path | None:
        """The folder a version is (or would be) kept in; None in the HF cache before it is downloaded."""
        source = source_for(version)
        if self.root is not None:
            return self.root / f"openvoice-{source.version}"
        found = [try_to_load_from_cache(source.repo_id, f) for f in source.files]
        if all(isinstance(p, str) for p in found) and Path(found[0]).parent == Path(found[1]).parent:
            return Path(found[0]).parent
        return None

    def locate(self, version: str) -> Path | None:
        """The folder holding both files of an installed version, or None."""
        folder = self.folder_for(version)
        if folder is not None and (folder / CONFIG_FILE).is_file() and (folder / CHECKPOINT_FILE).is_file():
            return folder
        return None

    def require(self, version: str = DEFAULT_VERSION) -> Path:
        """The installed converter's folder, or an error that says how to get it."""
        folder = self.locate(version)
        if folder is None:
            flag = "" if version == DEFAULT_VERSION else f" --version {version}"
            raise ModelsError(
                f"no OpenVoice {version.upper()} converter is installed in {self.describe()}: run "
                f"`voiceclone models download{flag}`, or {self._manual_install(source_for(version))}"
            )
        return folder

    def installed(self) -> list[InstalledConverter]:
        """Every installed version, with its size on disk."""
        out = []
        for version in SOURCES:
            folder = self.locate(version)
            if folder is not None:
                size = sum((folder / f).resolve().stat().st_size for f in (CONFIG_FILE, CHECKPOINT_FILE))
                out.append(InstalledConverter(version, folder, size))
        return out

    def download(self, version: str = DEFAULT_VERSION, force: bool = False, progress: bool | None = None) -> Path:
        """Fetch a version from the hub (resuming a broken download), check it loads, and return its folder."""
        source = source_for(version)
        if not force and self.locate(source.version) is not None:
            folder = self.locate(source.version)
            assert folder is not None
            return folder
        endpoint = hub_endpoint()
        if constants.HF_HUB_OFFLINE:
            raise ModelsError(self._offline_hint(source, "HF_HUB_OFFLINE is set"))
        reason = unreachable(endpoint)
        if reason:
            raise ModelsError(self._offline_hint(source, reason))
        show = sys.stderr.isatty() if progress is None else progress
        (enable_progress_bars if show else disable_progress_bars)()
        staging = None
        try:
            if self.root is None:
                paths = [
                    Path(hf_hub_download(source.repo_id, f, force_download=force, endpoint=endpoint))
                    for f in source.files
                ]
                folder = paths[0].parent
            else:
                self.root.mkdir(parents=True, exist_ok=True)
                # A fixed staging folder (not a fresh temp one) so that an interrupted download resumes.
                staging = self.root / f".download-{source.version}"
                for f in source.files:
                    hf_hub_download(source.repo_id, f, local_dir=staging, force_download=force, endpoint=endpoint)
                folder = staging / source.subfolder
        except ModelsError:
            raise
        except Exception as exc:  # network, HTTP, disk: one message that says what to do
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelsError(self._offline_hint(source, text)) from None
        _verify(folder)
        if self.root is None:
            return folder
        target = self.root / f"openvoice-{source.version}"
        _replace_folder(folder, target)
        assert staging is not None
        shutil.rmtree(staging, ignore_errors=True)
        return target

    def _offline_hint(self, source: ConverterSource, reason: str) -> str:
        return (
            f"cannot download the {source.version.upper()} converter from the Hugging Face hub ({reason}); "
            f"{self._manual_install(source)}"
        )

    def _manual_install(self, source: ConverterSource) -> str:
        files = " and ".join(source.files)
        if self.root is not None:
            return f"copy {files} from the hub repo {source.repo_id} into {self.root / f'openvoice-{source.version}'}"
        return (
            f"copy {files} from the hub repo {source.repo_id} into DIR/openvoice-{source.version}/ and set "
            f"{MODELS_DIR_ENV}=DIR (or pass --models-dir DIR)"
        )


def _verify(folder: Path) -> None:
    """A downloaded converter must load: every tensor present, shaped and finite."""
    # Deferred: the converter brings torch (about 1 s), which listing or locating converters never needs.
    from voiceclone.openvoice.converter import ToneColorConverter

    try:
        ToneColorConverter.load(folder, device="cpu")
    except CheckpointError as exc:
        raise ModelsError(
            f"the downloaded converter fails its checks ({exc}); run the download again with --force"
        ) from None


def _replace_folder(source: Path, target: Path) -> None:
    """Move `source` to `target`, replacing an old `target` without a moment where neither exists whole."""
    target.parent.mkdir(parents=True, exist_ok=True)
    incoming = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    for name in (CONFIG_FILE, CHECKPOINT_FILE):
        shutil.move(str(source / name), str(incoming / name))
    if target.exists():
        old = target.with_name(f".{target.name}-old")
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
        incoming.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        incoming.rename(target)
