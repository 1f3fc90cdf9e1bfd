"""Loading Resemble's PerTh network from its wheel without torchaudio, which cannot be installed beside our torch.

The upstream problem: resemble-perth 1.0.1 (the current release) imports `torchaudio` at module level, in
`perth/perth_net/perth_net_implicit/audio_processor.py` (`from torchaudio.transforms import Spectrogram,
InverseSpectrogram, TimeStretch`), yet declares no dependencies at all in its wheel's metadata, so nothing pulls
torchaudio in, and torchaudio cannot be installed beside our torch: its last release on PyPI (2.11) is built
against CUDA torch (it fails to load with `libc10_cuda.so` missing beside our CPU torch 2.13). perth uses only two
of those transforms (a complex STFT and its inverse) and builds a `TimeStretch` it never calls.

So while perth is imported, `torchaudio.transforms` is stood in for by the same two transforms on
`torch.stft`/`torch.istft` with torchaudio's arguments (centred, reflect padding, not normalised, one-sided), and
removed again afterwards; a working torchaudio, if one is installed, is used instead. The network is built from
perth's own classes and loaded with `torch.load(weights_only=True)` from the wheel's folder (perth's own loader
prints to standard output, which `speak -o -` uses for audio, and may create folders in site-packages).
"""

from __future__ import annotations

import math
import sys
import types
import warnings
from pathlib import Path

import torch
import yaml
from torch import nn

from voiceclone.errors import UserError
from voiceclone.once import once

INSTALL_HINT = "install it: pip install resemble-perth"


class WatermarkUnavailable(UserError):
    """resemble-perth is not installed, or its model cannot be loaded."""


def load_net() -> nn.Module:
    """PerTh's network from the wheel's own checkpoint, on the CPU, in eval mode (a new one each call).

    Raises:
        WatermarkUnavailable: resemble-perth is missing or its model file is damaged.
    """
    perth = perth_modules()
    perth_net_module, config_module = perth.perth_net, perth.config
    folder = Path(perth_net_module.__file__).parents[2] / "pretrained" / "implicit"
    checkpoints = sorted(folder.glob("perth_net_*.pth.tar"), key=lambda p: int(p.name.split("_")[-1].split(".")[0]))
    try:
        if not checkpoints:
            raise FileNotFoundError(f"no perth_net_*.pth.tar in {folder}")
        hp = config_module.PerthConfig(**yaml.safe_load((folder / "hparams.yaml").read_text()))
        net = perth_net_module.PerthNet(hp)
        state = torch.load(checkpoints[-1], map_location="cpu", weights_only=True)
        net.load_state_dict(state["model"])
    except Exception as exc:  # a damaged or partial install: missing file, bad YAML, bad tensors
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
        raise WatermarkUnavailable(
            f"cannot load the PerTh watermark model ({first}); reinstall resemble-perth"
        ) from None
    return net.eval()


@once
def perth_modules() -> types.SimpleNamespace:
    """perth's modules and the two functions the mark uses, imported once (the only place perth is imported).

    Raises:
        WatermarkUnavailable: resemble-perth is not installed.
    """
    try:
        return _import_perth()
    except ImportError as exc:
        raise WatermarkUnavailable(f"the watermark needs resemble-perth ({exc}): {INSTALL_HINT}") from None


def _import_perth() -> types.SimpleNamespace:
    """perth's network and config modules, with torchaudio's two transforms stood in for if need be."""
    try:
        import torchaudio.transforms  # noqa: F401  # a working torchaudio is used as perth expects
    except Exception:  # not installed, or a CUDA build that cannot load beside our CPU torch
        saved = {name: sys.modules.get(name) for name in ("torchaudio", "torchaudio.transforms")}
        sys.modules.update(_torchaudio_stand_in())
        try:
            return _perth_modules()
        finally:  # nothing else in the process should take the stand-in for torchaudio
            for name, module in saved.items():
                if module is None:
                    sys.modules.pop(name, None)
                else:
                    sys.modules[name] = module
    return _perth_modules()


def _perth_modules():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # perth imports pkg_resources, which warns that it is deprecated
        from perth.perth_net.perth_net_implicit import config
        from perth.perth_net.perth_net_implicit.model import magmask, perth_net
        from perth.perth_net.perth_net_implicit.utils import magphase_to_cx
    return types.SimpleNamespace(perth_net=perth_net, config=config, magmask=magmask, magphase_to_cx=magphase_to_cx)


class _Spectrogram(nn.Module):
    """torchaudio.transforms.Spectrogram(power=None) as perth uses it: the complex one-sided STFT."""

    def __init__(self, n_fft, win_length, hop_length, window_fn, power=None, normalized=False, **_):
        super().__init__()
        if power is not None or normalized:
            raise NotImplementedError("the stand-in covers only the complex, unnormalised spectrogram")
        self.n_fft, self.win_length, self.hop_length = n_fft, win_length, hop_length
        self.register_buffer("window", window_fn(win_length))

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        shape = waveform.shape
        spec = torch.stft(
            waveform.reshape(-1, shape[-1]),
            self.n_fft,
            self.hop_length,
            self.win_length,
            self.window,
            center=True,
            pad_mode="reflect",
            normalized=False,
            onesided=True,
            return_complex=True,
        )
        return spec.reshape(shape[:-1] + spec.shape[-2:])


class _InverseSpectrogram(nn.Module):
    """torchaudio.transforms.InverseSpectrogram as perth uses it: the inverse of `_Spectrogram`."""

    def __init__(self, n_fft, win_length, hop_length, window_fn, normalized=False, **_):
        super().__init__()
        if normalized:
            raise NotImplementedError("the stand-in covers only the unnormalised inverse")
        self.n_fft, self.win_length, self.hop_length = n_fft, win_length, hop_length
        self.register_buffer("window", window_fn(win_length))

    def forward(self, spectrogram: torch.Tensor, length: int | None = None) -> torch.Tensor:
        shape = spectrogram.shape
        wave = torch.istft(
            spectrogram.reshape(-1, shape[-2], shape[-1]),
            self.n_fft,
            self.hop_length,
            self.win_length,
            self.window,
            center=True,
            normalized=False,
            onesided=True,
            length=length,
            return_complex=False,
        )
        return wave.reshape(shape[:-2] + wave.shape[-1:])


class _TimeStretch(nn.Module):
    """Only its buffer: perth builds one (and its checkpoint holds the buffer) but never calls it."""

    def __init__(self, hop_length, n_freq, fixed_rate=None):
        super().__init__()
        self.register_buffer("phase_advance", torch.linspace(0, math.pi * hop_length, n_freq)[..., None])

    def forward(self, *_):
        raise NotImplementedError("time stretching is not part of the watermark")


def _torchaudio_stand_in() -> dict[str, types.ModuleType]:
    package = types.ModuleType("torchaudio")
    transforms = types.ModuleType("torchaudio.transforms")
    transforms.Spectrogram = _Spectrogram
    transforms.InverseSpectrogram = _InverseSpectrogram
    transforms.TimeStretch = _TimeStretch
    package.transforms = transforms
    return {"torchaudio": package, "torchaudio.transforms": transforms}
