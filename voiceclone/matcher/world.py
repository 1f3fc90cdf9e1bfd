"""The WORLD vocoder (pyworld) as the matcher uses it: analysis settings, analysis, and the synthesis time base.

WORLD describes speech as F0 (Hz per frame), a spectral envelope (power per frequency bin per frame, CheapTrick)
and aperiodicity (0..1 per bin per frame, D4C); `pyworld.synthesize` turns the three back into a waveform.
"""

from __future__ import annotations

import numpy as np

from voiceclone.matcher.pitch import track_f0
from voiceclone.matcher.vocoder import pyworld

__all__ = ["FRAME_PERIOD_MS", "MIN_RATE", "MAX_RATE", "Analysis", "analyze", "fft_size", "total_phase"]

FRAME_PERIOD_MS = 5.0  # WORLD's default; 10 ms smears plosive onsets audibly
MIN_RATE = 16000  # below this the envelope above 8 kHz, which carries sibilants, is gone
MAX_RATE = 48000
CHEAPTRICK_F0_FLOOR = 71.0  # WORLD's default: gives a 1024-point FFT at 22050 Hz (46 ms windows)
KDEFAULT_F0 = 500.0  # WORLD's synthesis places unvoiced pulses at this rate (constantnumbers.h kDefaultF0)


class Analysis:
    """WORLD parameters of a stretch of speech, one row per frame.

    Attributes:
        f0: (n,) float64 F0 in Hz, 0 where unvoiced.
        sp: (n, fft_size // 2 + 1) float64 spectral envelope (power).
        ap: (n, fft_size // 2 + 1) float64 aperiodicity in [0, 1].
    """

    def __init__(self, f0: np.ndarray, sp: np.ndarray, ap: np.ndarray):
        self.f0, self.sp, self.ap = f0, sp, ap

    def __len__(self) -> int:
        return len(self.f0)

    def rows(self, start: int, stop: int) -> Analysis:
        """Frames [start, stop) as a new Analysis (views, not copies)."""
        return Analysis(self.f0[start:stop], self.sp[start:stop], self.ap[start:stop])


def fft_size(fs: int) -> int:
    """CheapTrick's FFT size at `fs` Hz (1024 at 16000-24000 Hz, 2048 at 44100-48000 Hz)."""
    return int(pyworld.get_cheaptrick_fft_size(fs, CHEAPTRICK_F0_FLOOR))


def frame_count(n_samples: int, fs: int) -> int:
    """Frames WORLD needs to cover `n_samples` (frame k at k * FRAME_PERIOD_MS), including the last sample."""
    return int(np.floor(n_samples / fs * 1000.0 / FRAME_PERIOD_MS)) + 1


def analyze(
    x: np.ndarray,
    fs: int,
    n_frames: int | None = None,
    ap_every: int = 1,
    center_hz: float | None = None,
    refine_f0: bool = True,
) -> Analysis:
    """WORLD analysis of a signal on the frame grid k * FRAME_PERIOD_MS from its first sample.

    Args:
        x: Mono signal (any float dtype), at least one sample.
        fs: Sample rate in Hz, MIN_RATE to MAX_RATE.
        n_frames: Frames to analyse (default: all that cover `x`).
        ap_every: Compute aperiodicity on every `ap_every`-th frame only and interpolate between them (1 = all);
            aperiodicity changes slowly, and D4C is the costliest step.
        center_hz: The speaker's median F0 if known (see `track_f0`).
        refine_f0: Refine F0 with StoneMask (see `track_f0`).

    Returns:
        The frames' F0, envelope and aperiodicity.
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    n = frame_count(len(x), fs) if n_frames is None else n_frames
    times = np.arange(n) * (FRAME_PERIOD_MS / 1000.0)
    f0 = track_f0(x, fs, times, center_hz, refine_f0)
    size = fft_size(fs)
    sp = pyworld.cheaptrick(x, f0, times, fs, fft_size=size)
    if ap_every <= 1 or n < 3:
        ap = pyworld.d4c(x, f0, times, fs, fft_size=size)
    else:
        keep = np.unique(np.concatenate([np.arange(0, n, ap_every), [n - 1]]))
        coarse = pyworld.d4c(x, np.ascontiguousarray(f0[keep]), np.ascontiguousarray(times[keep]), fs, fft_size=size)
        ap = _interp_rows(keep, coarse, n)
        # A frame D4C did not see keeps its own voicing: unvoiced frames are fully aperiodic.
        ap[f0 == 0] = np.maximum(ap[f0 == 0], 0.999)
    return Analysis(f0, sp, ap)


def _interp_rows(keep: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
    """Linear interpolation of `rows` (given at frame indices `keep`) onto frames 0..n-1."""
    pos = np.arange(n)
    right = np.clip(np.searchsorted(keep, pos, side="left"), 1, len(keep) - 1)
    left = right - 1
    w = ((pos - keep[left]) / (keep[right] - keep[left]))[:, None]
    return (1 - w) * rows[left] + w * rows[right]


def total_phase(f0: np.ndarray, fs: int, n_samples: int) -> np.ndarray:
    """WORLD synthesis's accumulated pulse phase (radians) at each output sample, as `pyworld.synthesize` computes it.

    Replicates GetTimeBase in WORLD's synthesis.cpp: F0 and a voicing flag interpolated linearly from the frames
    (with one extrapolated frame past the end), unvoiced samples at kDefaultF0, phase summed from the first sample.
    A pulse is placed where the phase wraps past a multiple of 2 pi; two syntheses whose phases agree modulo 2 pi at
    a sample and whose F0 agree after it place the same pulses after it.

    Args:
        f0: (n,) F0 per frame in Hz (0 = unvoiced), n >= 2.
        fs: Sample rate in Hz.
        n_samples: Output samples to cover.

    Returns:
        (n_samples,) float64 accumulated phase.
    """
    lowest = float(fs // fft_size(fs)) + 1.0  # synthesis.cpp: fs / fft_size + 1.0 in integer arithmetic
    period = FRAME_PERIOD_MS / 1000.0
    coarse = np.where(f0 < lowest, 0.0, f0)
    vuv = (coarse != 0.0).astype(np.float64)
    n = len(coarse)
    coarse_t = np.arange(n + 1) * period
    coarse = np.append(coarse, 2 * coarse[-1] - coarse[-2])
    vuv = np.append(vuv, 2 * vuv[-1] - vuv[-2])
    t = np.arange(n_samples) / float(fs)
    f = np.interp(t, coarse_t, coarse)
    voiced = np.interp(t, coarse_t, vuv) > 0.5
    f = np.where(voiced, f, KDEFAULT_F0)
    return np.cumsum(2.0 * np.pi * f / fs)
