"""The converter's `config.json`: the hyper-parameters that shape the network, read and checked."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voiceclone.openvoice.errors import CheckpointError


@dataclass(frozen=True)
class CheckpointConfig:
    """What a checkpoint's `config.json` says about its network; V1 files lack `_version_` and `zero_g`."""

    version: str
    sampling_rate: int
    filter_length: int
    hop_length: int
    win_length: int
    inter_channels: int
    hidden_channels: int
    gin_channels: int
    resblock: str
    resblock_kernel_sizes: tuple[int, ...]
    resblock_dilation_sizes: tuple[tuple[int, ...], ...]
    upsample_rates: tuple[int, ...]
    upsample_initial_channel: int
    upsample_kernel_sizes: tuple[int, ...]
    zero_g: bool

    @property
    def spec_channels(self) -> int:
        """Frequency bins of the linear spectrogram (one-sided STFT)."""
        return self.filter_length // 2 + 1

    @property
    def samples_per_frame(self) -> int:
        """Audio samples the decoder makes for each spectrogram frame (the product of the upsample rates)."""
        n = 1
        for u in self.upsample_rates:
            n *= u
        return n

    @classmethod
    def from_file(cls, path: Path) -> CheckpointConfig:
        """Read and validate a converter `config.json`."""
        try:
            raw = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CheckpointError(f"{path}: file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"{path}: cannot read it ({exc})") from None
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        return cls.from_dict(raw, source=str(path))

    @classmethod
    def from_dict(cls, raw: Any, source: str = "config.json") -> CheckpointConfig:
        """Validate a parsed config; every problem names the key."""
        if not isinstance(raw, dict):
            raise CheckpointError(f"{source}: expected a JSON object at the top level")
        data = _section(raw, "data", source)
        model = _section(raw, "model", source)
        version = raw.get("_version_", "v1")
        if version not in ("v1", "v2"):
            raise CheckpointError(f"{source}: _version_ is {version!r}; expected 'v1' or 'v2'")
        n_speakers = data.get("n_speakers", 0)
        if n_speakers != 0:
            raise CheckpointError(
                f"{source}: data.n_speakers is {n_speakers!r}; a tone-color converter has 0 (this is a TTS model)"
            )
        cfg = cls(
            version=version,
            sampling_rate=_int(data, "sampling_rate", "data", source),
            filter_length=_int(data, "filter_length", "data", source),
            hop_length=_int(data, "hop_length", "data", source),
            win_length=_int(data, "win_length", "data", source),
            inter_channels=_int(model, "inter_channels", "model", source),
            hidden_channels=_int(model, "hidden_channels", "model", source),
            gin_channels=_int(model, "gin_channels", "model", source),
            resblock=str(model.get("resblock", "1")),
            resblock_kernel_sizes=_ints(model, "resblock_kernel_sizes", source),
            resblock_dilation_sizes=_nested_ints(model, "resblock_dilation_sizes", source),
            upsample_rates=_ints(model, "upsample_rates", source),
            upsample_initial_channel=_int(model, "upsample_initial_channel", "model", source),
            upsample_kernel_sizes=_ints(model, "upsample_kernel_sizes", source),
            zero_g=bool(model.get("zero_g", False)),
        )
        cfg._check(source)
        return cfg

    def _check(self, source: str) -> None:
        if self.resblock not in ("1", "2"):
            raise CheckpointError(f"{source}: model.resblock is {self.resblock!r}; expected '1' or '2'")
        if len(self.resblock_kernel_sizes) != len(self.resblock_dilation_sizes):
            raise CheckpointError(
                f"{source}: model.resblock_kernel_sizes and model.resblock_dilation_sizes differ in length"
            )
        if len(self.upsample_rates) != len(self.upsample_kernel_sizes) or not self.upsample_rates:
            raise CheckpointError(f"{source}: model.upsample_rates and model.upsample_kernel_sizes differ in length")
        if self.inter_channels % 2:
            raise CheckpointError(f"{source}: model.inter_channels must be even (the flow splits it in two)")
        if self.win_length > self.filter_length:
            raise CheckpointError(f"{source}: data.win_length must not exceed data.filter_length")
        for k, u in zip(self.upsample_kernel_sizes, self.upsample_rates, strict=False):
            if k < u:
                raise CheckpointError(f"{source}: model.upsample_kernel_sizes {k} is smaller than its rate {u}")


def _section(raw: dict, key: str, source: str) -> dict:
    value = raw.get(key)
    if not isinstance(value, dict):
        raise CheckpointError(f"{source}: missing or malformed section {key!r}")
    return value


def _int(section: dict, key: str, where: str, source: str) -> int:
    value = section.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise CheckpointError(f"{source}: {where}.{key} must be a positive integer, got {value!r}")
    return value


def _ints(section: dict, key: str, source: str) -> tuple[int, ...]:
    value = section.get(key)
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
        raise CheckpointError(f"{source}: model.{key} must be a list of positive integers, got {value!r}")
    return tuple(value)


def _nested_ints(section: dict, key: str, source: str) -> tuple[tuple[int, ...], ...]:
    value = section.get(key)
    ok = isinstance(value, list) and all(
        isinstance(row, list) and row and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in row)
        for row in value
    )
    if not ok:
        raise CheckpointError(f"{source}: model.{key} must be a list of lists of positive integers, got {value!r}")
    return tuple(tuple(row) for row in value)
