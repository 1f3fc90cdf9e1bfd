"""Choosing where the converter runs: CUDA or Apple MPS when present, the CPU otherwise."""

from __future__ import annotations

import torch
from loguru import logger


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(requested: str | torch.device = "auto") -> torch.device:
    """`auto` picks CUDA, then MPS, then CPU; a requested device that is missing falls back to CPU with a warning."""
    name = str(requested).strip().lower()
    if name in ("", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ValueError(f"unknown device {requested!r}: use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = device.index or 0
        if index >= count:
            logger.warning("device {} is not available here; running on the CPU instead", name)
            return torch.device("cpu")
    elif device.type == "mps" and not _mps_available():
        logger.warning("device mps is not available here; running on the CPU instead")
        return torch.device("cpu")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unsupported device {requested!r}: use auto, cpu, cuda, cuda:N or mps")
    return device
