"""Converters with random weights, written in the published format: for benchmarks and offline tests.

Real-size random weights cost exactly what the real ones cost to run, and need no download. The tiny config
builds and runs in milliseconds with the same data front end as the real one.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import torch

from voiceclone.openvoice.config import CheckpointConfig
from voiceclone.openvoice.network import ConverterNetwork, weight_normed

# The published V2 converter's config.json (shared/specs/openvoice-converter.md).
REAL_V2: dict = {
    "_version_": "v2",
    "data": {"sampling_rate": 22050, "filter_length": 1024, "hop_length": 256, "win_length": 1024, "n_speakers": 0},
    "model": {
        "zero_g": True,
        "inter_channels": 192,
        "hidden_channels": 192,
        "filter_channels": 768,
        "n_heads": 2,
        "n_layers": 6,
        "kernel_size": 3,
        "p_dropout": 0.1,
        "resblock": "1",
        "resblock_kernel_sizes": [3, 7, 11],
        "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
        "upsample_rates": [8, 8, 2, 2],
        "upsample_initial_channel": 512,
        "upsample_kernel_sizes": [16, 16, 4, 4],
        "gin_channels": 256,
    },
}


def tiny_config(version: str = "v2") -> dict:
    """A converter small enough to build and run in milliseconds; V1 files lack `_version_` and `zero_g`."""
    cfg = copy.deepcopy(REAL_V2)
    cfg["model"].update(inter_channels=8, hidden_channels=12, upsample_initial_channel=32, gin_channels=16)
    if version == "v1":
        del cfg["_version_"]
        del cfg["model"]["zero_g"]
    return cfg


def write_random_converter(folder: str | Path, config: dict | None = None, seed: int = 0) -> Path:
    """Write `config.json` and a random `checkpoint.pth` (weight norm split into `weight_g`/`weight_v`)."""
    config = copy.deepcopy(config or REAL_V2)
    network = ConverterNetwork(CheckpointConfig.from_dict(config))
    generator = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for name, param in network.state_dict().items():
        module, _, leaf = name.rpartition(".")
        fan_in = param[0].numel() if param.ndim > 1 else 1
        if leaf == "weight" and weight_normed(module):
            v = torch.randn(param.shape, generator=generator)
            state[f"{module}.weight_g"] = (
                torch.linalg.vector_norm(v.flatten(1), dim=1).reshape((-1,) + (1,) * (v.ndim - 1))
                * (0.5 + torch.rand((v.shape[0],) + (1,) * (v.ndim - 1), generator=generator))
                / fan_in**0.5
            )
            state[f"{module}.weight_v"] = v
        elif "layernorm" in module:
            state[name] = (1.0 if leaf == "weight" else 0.0) + 0.1 * torch.randn(param.shape, generator=generator)
        elif param.ndim > 1:
            state[name] = torch.randn(param.shape, generator=generator) / fan_in**0.5
        else:
            state[name] = 0.05 * torch.randn(param.shape, generator=generator)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    torch.save({"model": state}, folder / "checkpoint.pth")
    return folder
