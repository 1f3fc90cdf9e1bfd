"""The plain WORLD recipe of issue 20: a reference that the matcher is measured against, not a product.

On the matcher's own WORLD analysis: log F0 mapped by mean and standard deviation; one vocal-tract-length warp
alpha in 0.8-1.3 chosen by aligning the two long-term log envelopes over 200-5000 Hz; a residual equaliser = the
difference of the long-term envelopes after the warp, smoothed over 25 bins, with no limit; aperiodicity warped
like the envelope. Whole utterances only (no streaming); the output has the input's RMS.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from voiceclone.matcher.pitch import track_f0
from voiceclone.matcher.vocoder import pyworld
from voiceclone.matcher.world import FRAME_PERIOD_MS, analyze, frame_count

ALPHAS = np.linspace(0.8, 1.3, 101)
SMOOTH_BINS = 25


@dataclass(frozen=True)
class RecipeStats:
    log_f0_mean: float
    log_f0_std: float
    envelope: np.ndarray  # mean ln power over voiced frames, per WORLD bin at the analysis rate


def _analysis(x: np.ndarray, fs: int, center_hz: float | None = None, ap_every: int = 1):
    x = np.asarray(x, dtype=np.float64)
    if center_hz is None:  # centre the tracker on a first rough median, as the matcher's profile does
        times = np.arange(frame_count(len(x), fs)) * (FRAME_PERIOD_MS / 1000.0)
        rough = track_f0(x, fs, times)
        center_hz = float(np.median(rough[rough > 0])) if np.any(rough > 0) else None
    return analyze(x, fs, center_hz=center_hz, ap_every=ap_every)


def stats(speech: np.ndarray, fs: int) -> RecipeStats:
    """Long-term statistics of a voice from its speech."""
    a = _analysis(speech, fs, ap_every=16)  # aperiodicity is not used here: computed sparsely, for speed
    voiced = a.f0 > 0
    log_f0 = np.log(a.f0[voiced])
    return RecipeStats(float(log_f0.mean()), float(log_f0.std()), np.log(a.sp[voiced] + 1e-30).mean(axis=0))


def _warp(rows: np.ndarray, alpha: float) -> np.ndarray:
    """Rows (per-bin values) with their frequency axis scaled by alpha (formants up when alpha > 1)."""
    bins = np.arange(rows.shape[-1])
    src = np.clip(bins / alpha, 0, bins[-1])
    left = np.minimum(np.floor(src).astype(int), bins[-1] - 1)
    frac = src - left
    return (1 - frac) * rows[..., left] + frac * rows[..., left + 1]


def convert(audio: np.ndarray, fs: int, source: RecipeStats, target: RecipeStats) -> np.ndarray:
    """`audio` (the source voice) moved towards the target voice; float32, same length and RMS."""
    x = np.asarray(audio, dtype=np.float64)
    a = _analysis(x, fs, center_hz=float(np.exp(source.log_f0_mean)))
    hz = np.linspace(0, fs / 2, a.sp.shape[1])
    band = (hz >= 200) & (hz <= 5000)
    tgt = target.envelope[band] - target.envelope[band].mean()
    errors = []
    for alpha in ALPHAS:
        w = _warp(source.envelope, alpha)[band]
        errors.append(np.mean((w - w.mean() - tgt) ** 2))
    alpha = float(ALPHAS[int(np.argmin(errors))])
    diff = target.envelope - _warp(source.envelope, alpha)
    eq = np.convolve(np.pad(diff, SMOOTH_BINS // 2, mode="edge"), np.ones(SMOOTH_BINS) / SMOOTH_BINS, mode="valid")
    voiced = a.f0 > 0
    ratio = target.log_f0_std / max(source.log_f0_std, 1e-3)
    f0 = np.where(
        voiced,
        np.exp(target.log_f0_mean + ratio * (np.log(np.where(voiced, a.f0, 1.0)) - source.log_f0_mean)),
        0.0,
    )
    sp = np.exp(_warp(np.log(a.sp + 1e-30), alpha) + eq)
    ap = np.clip(_warp(a.ap, alpha), 0.001, 1.0)
    y = pyworld.synthesize(f0, np.ascontiguousarray(sp), np.ascontiguousarray(ap), fs, FRAME_PERIOD_MS)[: len(x)]
    y = np.pad(y, (0, len(x) - len(y)))
    y *= np.sqrt(np.mean(x**2)) / max(np.sqrt(np.mean(y**2)), 1e-9)
    return np.clip(y, -1.0, 1.0).astype(np.float32)
