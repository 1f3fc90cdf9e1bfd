"""Tiny random converters saved in the published OpenVoice format (config.json + checkpoint.pth)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import torch

from reference_model import RefConverter

# The real V2 config (see shared/specs/openvoice-converter.md).
REAL_V2 = {
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
    """A converter small enough to build and run in milliseconds, same data front end as the real one."""
    cfg = copy.deepcopy(REAL_V2)
    cfg["model"].update(inter_channels=8, hidden_channels=12, upsample_initial_channel=32, gin_channels=16)
    if version == "v1":
        del cfg["_version_"]
        del cfg["model"]["zero_g"]
    return cfg


def random_reference(config: dict, seed: int = 0) -> RefConverter:
    """A reference-style model with random weights, biases and weight-norm gains (not the default init)."""
    torch.manual_seed(seed)
    model = RefConverter(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("weight_g"):
                p.copy_(0.5 + torch.rand_like(p))
            elif "layernorm" in name:
                p.copy_((1.0 if name.endswith("weight") else 0.0) + 0.1 * torch.randn_like(p))
            elif name.endswith("bias") or "bias_" in name:
                p.copy_(0.05 * torch.randn_like(p))
    return model.eval()


def save_converter(folder: Path, config: dict, model: torch.nn.Module) -> Path:
    """Write `config.json` and `checkpoint.pth` as the published converters are laid out."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    torch.save({"model": model.state_dict()}, folder / "checkpoint.pth")
    return folder
