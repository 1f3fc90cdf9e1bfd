"""The converter's audio front end: a linear-magnitude STFT, as the reference computes it."""

from __future__ import annotations

import torch
import torch.nn.functional as F

_windows: dict[tuple[int, torch.dtype, torch.device], torch.Tensor] = {}


def linear_spectrogram(y: torch.Tensor, n_fft: int, hop: int, win: int) -> torch.Tensor:
    """`[B, N]` samples -> `[B, n_fft // 2 + 1, N // hop]` magnitudes (reflect-padded, centre off)."""
    key = (win, y.dtype, y.device)
    window = _windows.get(key)
    if window is None:
        window = _windows[key] = torch.hann_window(win, dtype=y.dtype, device=y.device)
    pad = (n_fft - hop) // 2
    y = F.pad(y.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
    spec = torch.stft(
        y,
        n_fft,
        hop_length=hop,
        win_length=win,
        window=window,
        center=False,
        normalized=False,
        onesided=True,
        return_complex=True,
    )
    return torch.sqrt(torch.view_as_real(spec).pow(2).sum(-1) + 1e-6)
