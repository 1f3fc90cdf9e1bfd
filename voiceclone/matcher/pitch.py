"""F0 tracking for the matcher: YIN candidates, a Viterbi path through them, optionally StoneMask refinement.

WORLD's own trackers (DIO, Harvest) report twice the pitch on much of the bundled Piper voice, whose fundamental
is weak (about 86 Hz by pYIN and by harmonic spacing, while DIO says about 157 Hz); an octave error in the analysis
becomes an octave jump in the converted voice. YIN's cumulative mean normalised difference d'(tau) has a dip at
every multiple of the period; each frame keeps its deepest few dips as candidates, and a Viterbi search over each
voiced run picks the path that is deep (periodic), short (YIN's preference for the first dip), smooth (octave jumps
cost a lot) and, when the speaker's median F0 is known, close to it. This agrees with pYIN on Piper and espeak-ng.
"""

from __future__ import annotations

import numpy as np
import soxr

from voiceclone.matcher.vocoder import pyworld

F0_FLOOR_HZ = 55.0  # below the lowest modal male voices (~65 Hz); vocal fry under it is treated as unvoiced
F0_CEIL_HZ = 700.0  # above high female and child speech
YIN_RATE = 8000  # F0 needs no more than 4 kHz of bandwidth; a quarter of the samples makes YIN ~4x cheaper
YIN_WINDOW_S = 0.025  # integration window: two periods at the floor would be 36 ms; 25 ms keeps fast glides
VOICED_MAX_DIFF = 0.35  # a frame whose deepest normalised-difference dip is above this is not periodic enough
CANDIDATES = 3  # dips kept per frame for the Viterbi search
LONG_LAG_COST = 0.05  # per octave of lag beyond the shortest dip (YIN's first-dip rule, made soft)
CENTER_OCTAVES = 2.0  # with a known median F0, search from half to twice it (speech rarely leaves that range)
CENTER_COST = 0.1  # per octave away from the known median: settles frames that are ambiguous by an octave
JUMP_COST = 0.5  # per octave of F0 change between neighbouring frames: an octave jump needs strong evidence
SILENCE_DB = -60.0  # windows this far below a full-scale sine count as silence (no F0 search)
MEDIAN_FRAMES = 5  # odd: median filter over voiced runs against single-frame octave slips
MIN_VOICED_FRAMES = 4  # shorter voiced runs (< 20 ms at 5 ms) are noise, not phonation


def track_f0(
    x: np.ndarray, fs: int, times: np.ndarray, center_hz: float | None = None, refine: bool = True
) -> np.ndarray:
    """F0 at the given frame times, 0 where unvoiced.

    Args:
        x: Float64 mono signal.
        fs: Its sample rate in Hz (8000 to 48000).
        times: Frame centres in seconds from the first sample, ascending.
        center_hz: The speaker's median F0 when known (a profile's): the search is then limited to an octave
            either side of it and leans towards it, which removes most octave errors and spurious voicing.
        refine: Refine voiced frames with StoneMask (instantaneous frequency at full band). Without it, F0 is
            YIN's period averaged over 25 ms, parabolically interpolated (within ~0.2 %), at ~2/3 of the cost.

    Returns:
        Float64 F0 in Hz per frame, in [F0_FLOOR_HZ, F0_CEIL_HZ] where voiced and 0 elsewhere.
    """
    if len(times) == 0:
        return np.zeros(0)
    low = soxr.resample(x, fs, YIN_RATE, quality="MQ") if fs != YIN_RATE else x
    f0 = _yin(np.ascontiguousarray(low, dtype=np.float64), YIN_RATE, times, center_hz)
    f0 = _clean(f0)
    if refine and np.any(f0 > 0):
        # StoneMask refines each voiced frame from the instantaneous frequency of the full-band signal.
        refined = pyworld.stonemask(x, f0, np.ascontiguousarray(times, dtype=np.float64), fs)
        # It can wander off on a weak frame; keep YIN's value where the refinement moved more than 10 %.
        ok = (refined > 0) & (np.abs(np.log(np.maximum(refined, 1e-3) / np.maximum(f0, 1e-3))) < 0.1)
        f0 = np.where(f0 > 0, np.where(ok, refined, f0), 0.0)
    return f0


def _yin(x: np.ndarray, fs: int, times: np.ndarray, center_hz: float | None) -> np.ndarray:
    """YIN F0 per frame (0 = unvoiced), lags chosen by a Viterbi search over each voiced run."""
    low, high = F0_FLOOR_HZ, F0_CEIL_HZ
    if center_hz is not None:
        low, high = max(low, center_hz / CENTER_OCTAVES), min(high, center_hz * CENTER_OCTAVES)
    tau_min = int(np.floor(fs / high))
    tau_max = int(np.ceil(fs / low))
    dn, level_db = _cmnd(x, fs, times, tau_max)
    lags, costs = _candidates(dn, tau_min, tau_max)
    if center_hz is not None:
        costs = costs + CENTER_COST * np.abs(np.log2(fs / lags / center_hz))
    costs[level_db < SILENCE_DB] = np.inf
    f0 = np.zeros(len(dn))
    voiced = np.isfinite(costs).any(axis=1)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], voiced.astype(np.int8), [0]])))
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        f0[start:stop] = fs / _viterbi(lags[start:stop], costs[start:stop])
    return f0


def _candidates(dn: np.ndarray, tau_min: int, tau_max: int) -> tuple[np.ndarray, np.ndarray]:
    """The CANDIDATES deepest dips of d' per frame: refined lags and costs, (frames, CANDIDATES); inf = none.

    The cost is the dip's depth plus LONG_LAG_COST per octave of lag beyond the shortest dip: YIN's preference for
    the shortest period, unless a dip twice as long is clearly deeper (a weak fundamental, period doubling).
    """
    seg = dn[:, tau_min : tau_max + 1]
    inner = seg[:, 1:-1]
    is_dip = (inner < seg[:, :-2]) & (inner <= seg[:, 2:]) & (inner < VOICED_MAX_DIFF)
    depth = np.where(is_dip, inner, np.inf)
    k = min(CANDIDATES, depth.shape[1])
    pick = np.argpartition(depth, k - 1, axis=1)[:, :k]
    value = np.take_along_axis(depth, pick, axis=1)
    tau = (pick + 1 + tau_min).astype(np.float64)
    # Parabolic interpolation around each dip for a sub-sample lag.
    rows = np.arange(len(dn))[:, None]
    t = np.minimum(pick + 1 + tau_min, tau_max - 1)
    a, b, c = dn[rows, t - 1], dn[rows, t], dn[rows, t + 1]
    den = a - 2 * b + c
    tau = tau + np.clip(np.where(den > 0, 0.5 * (a - c) / np.where(den > 0, den, 1.0), 0.0), -1.0, 1.0)
    shortest = np.min(np.where(np.isfinite(value), tau, np.inf), axis=1, keepdims=True)
    cost = value + LONG_LAG_COST * np.log2(tau / np.where(np.isfinite(shortest), shortest, 1.0))
    return tau, np.where(np.isfinite(value), cost, np.inf)


def _viterbi(lags: np.ndarray, costs: np.ndarray) -> np.ndarray:
    """The lag path through one voiced run that minimises dip costs plus JUMP_COST per octave of F0 change."""
    n = len(lags)
    total = costs[0].copy()
    back = np.zeros(lags.shape, dtype=np.int64)
    log_lag = np.log2(lags)
    for i in range(1, n):
        jump = JUMP_COST * np.abs(log_lag[i][:, None] - log_lag[i - 1][None, :])
        step = total[None, :] + jump
        back[i] = np.argmin(step, axis=1)
        total = step[np.arange(len(step)), back[i]] + costs[i]
    path = np.empty(n, dtype=np.int64)
    path[-1] = int(np.argmin(total))
    for i in range(n - 1, 0, -1):
        path[i - 1] = back[i, path[i]]
    return lags[np.arange(n), path]


def _cmnd(x: np.ndarray, fs: int, times: np.ndarray, tau_max: int) -> tuple[np.ndarray, np.ndarray]:
    """YIN's cumulative mean normalised difference d'(tau), (frames, tau_max + 1), and each window's level in dB."""
    w = int(round(YIN_WINDOW_S * fs))
    span = w + tau_max + 1
    starts = np.round(times * fs).astype(np.int64) - span // 2
    # Zeros stand in for samples before the start and past the end (times may reach beyond the last sample).
    right = max(int(starts[-1]) + span - len(x), 0) + 1
    padded = np.concatenate([np.zeros(span), x, np.zeros(right)])
    idx = starts[:, None] + span + np.arange(span)[None, :]
    frames = padded[idx]  # (n, span): the window and the lags it is compared with

    # d(tau) = E(0..w) + E(tau..tau+w) - 2 r(tau), with r by FFT and the energies by cumulative sums.
    nfft = 1 << int(np.ceil(np.log2(span + w)))
    spec_a = np.fft.rfft(frames[:, :w], nfft)
    spec_b = np.fft.rfft(frames, nfft)
    r = np.fft.irfft(np.conj(spec_a) * spec_b, nfft)[:, : tau_max + 1]
    sq = np.concatenate([np.zeros((len(frames), 1)), np.cumsum(frames**2, axis=1)], axis=1)
    taus = np.arange(tau_max + 1)
    energy_shift = sq[:, taus + w] - sq[:, taus]
    d = np.maximum(sq[:, w : w + 1] + energy_shift - 2.0 * r, 0.0)
    # Cumulative mean normalised difference; d'(0) = 1.
    cum = np.cumsum(d[:, 1:], axis=1)
    dn = np.ones_like(d)
    dn[:, 1:] = d[:, 1:] * taus[1:] / np.maximum(cum, 1e-12)
    level_db = 10 * np.log10(sq[:, w] / w + 1e-20) + 3.0  # dB relative to a full-scale sine
    return dn, level_db


def _clean(f0: np.ndarray) -> np.ndarray:
    """Median-filter log F0 inside voiced runs and drop runs too short to be phonation."""
    out = f0.copy()
    voiced = f0 > 0
    edges = np.flatnonzero(np.diff(np.concatenate([[0], voiced.astype(np.int8), [0]])))
    half = MEDIAN_FRAMES // 2
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        if stop - start < MIN_VOICED_FRAMES:
            out[start:stop] = 0.0
            continue
        logs = np.log(f0[start:stop])
        padded = np.pad(logs, half, mode="edge")
        windows = np.lib.stride_tricks.sliding_window_view(padded, MEDIAN_FRAMES)
        out[start:stop] = np.exp(np.median(windows, axis=1))
    return out
