"""Tiny random converters saved in the published OpenVoice format (config.json + checkpoint.pth)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from reference_model import RefConverter

from testkit.converters import REAL_V2, tiny_config  # noqa: F401  (re-exported for the tests)


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
