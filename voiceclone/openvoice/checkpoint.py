"""Reading `checkpoint.pth` safely and matching it, tensor by tensor, to the network's parameters."""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
from torch.nn.utils.parametrizations import weight_norm

from voiceclone.openvoice.errors import CheckpointError
from voiceclone.openvoice.network import ConverterNetwork, weight_normed

# Keys newer PyTorch writes for `torch.nn.utils.parametrizations.weight_norm`; accepted beside the old style.
_PARAMETRIZED = {".parametrizations.weight.original0": ".weight_g", ".parametrizations.weight.original1": ".weight_v"}


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Load `{"model": state_dict}` with `weights_only=True`; every failure becomes a `CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found" if not path.exists() else f"{path}: not a file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: the file is empty")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "weights only" in str(exc).lower() or "weights_only" in str(exc):
            raise CheckpointError(
                f"{path}: refused to load: the file asks to run code or build objects that a weights file "
                f"never needs ({first})"
            ) from None
        raise CheckpointError(f"{path}: not a PyTorch checkpoint ({first})") from None
    except Exception as exc:  # torch.load on arbitrary bytes raises almost anything (KeyError, EOFError, ...)
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        hint = "truncated or damaged" if ("zip" in text.lower() or isinstance(exc, EOFError)) else "unreadable"
        raise CheckpointError(f"{path}: not a usable PyTorch checkpoint, {hint} ({text})") from None
    if not isinstance(obj, dict) or "model" not in obj:
        raise CheckpointError(f"{path}: expected a dictionary with a 'model' entry (the OpenVoice format)")
    state = obj["model"]
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: 'model' is not a state dict")
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if not isinstance(key, str):
            raise CheckpointError(f"{path}: state dict key {key!r} is not a string")
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{path}: {key} is a {type(value).__name__}, not a tensor")
        for new_style, old_style in _PARAMETRIZED.items():
            if key.endswith(new_style):
                key = key[: -len(new_style)] + old_style
        out[key] = value
    return out


def load_into(network: ConverterNetwork, state: dict[str, torch.Tensor], source: Path) -> None:
    """Check every tensor's presence, shape and values, fold weight norm, and load into `network`."""
    expected = network.state_dict()
    folded: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    for name, target in expected.items():
        module, _, leaf = name.rpartition(".")
        if leaf == "weight" and weight_normed(module):
            g_key, v_key = f"{module}.weight_g", f"{module}.weight_v"
            g = _take(state, g_key, _norm_shape(target.shape), source, used)
            v = _take(state, v_key, tuple(target.shape), source, used)
            folded[name] = fold_weight_norm(g, v)
        else:
            folded[name] = _take(state, name, tuple(target.shape), source, used)
    unexpected = sorted(set(state) - used)
    if unexpected:
        more = f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1 else ""
        raise CheckpointError(f"{source}: unexpected tensor {unexpected[0]}{more}: not part of this converter config")
    network.load_state_dict(folded, strict=True)


def fold_weight_norm(g: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The weight `g * v / ||v||` (norm over every dimension but 0), computed once at load.

    Goes through PyTorch's public weight-norm parametrization, so the arithmetic is the very kernel the
    reference runs at every forward (`torch.nn.utils.weight_norm`, dim 0): the folded weight is bit-identical.

    Args:
        g: Gains, shaped `[out, 1, ...]`.
        v: Directions, shaped like the weight.

    Returns:
        The weight tensor, shaped like `v`.
    """
    holder = torch.nn.Module()
    holder.weight = torch.nn.Parameter(v.clone(), requires_grad=False)
    weight_norm(holder, "weight", dim=0)
    with torch.no_grad():
        holder.parametrizations.weight.original0.copy_(g)
        holder.parametrizations.weight.original1.copy_(v)
        return holder.weight.detach().clone()


def _norm_shape(shape: torch.Size) -> tuple[int, ...]:
    return (shape[0],) + (1,) * (len(shape) - 1)


def _take(
    state: dict[str, torch.Tensor], key: str, shape: tuple[int, ...], source: Path, used: set[str]
) -> torch.Tensor:
    if key not in state:
        raise CheckpointError(f"{source}: missing tensor {key}")
    tensor = state[key]
    if tuple(tensor.shape) != shape:
        raise CheckpointError(
            f"{source}: tensor {key} has shape {list(tensor.shape)}, expected {list(shape)} for this config"
        )
    if not tensor.is_floating_point():
        raise CheckpointError(f"{source}: tensor {key} holds {tensor.dtype}, expected floating point weights")
    tensor = tensor.float()
    if not torch.isfinite(tensor).all():
        raise CheckpointError(f"{source}: tensor {key} contains NaN or infinite values")
    used.add(key)
    return tensor
