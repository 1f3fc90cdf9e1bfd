"""The target's own voiced spectra, and the per-frame correction that draws a mapped frame towards them.

The statistics the matcher maps (pitch, one warp, average equalisers, spreads) leave each converted frame with the
base voice's way of forming that sound: its vowel qualities, its formant bandwidths. A codebook keeps the shapes
of the target's own voiced envelopes (k-means centroids of its enrollment frames, each frame's level removed, on
an ERB-spaced grid). At conversion every voiced frame, already mapped into the target's range, is compared with
the centroids by its cepstrum (the shape of its envelope) and moved to the mean of its nearest ones: the frame
keeps what it says but takes the target's rendering of it (a nearest-neighbour step, with no state).

The nearest centroids change from frame to frame, so the correction is smoothed over time (15 ms); a frame's
correction then depends on CONTEXT_FRAMES frames either side, which the streaming converter analyses with it.

Below about 1.5 kHz (F1, F2: which vowel it is) the frame keeps part of its own shape, so that a target whose
enrollment lacks a sound does not make the clone say a neighbouring one; above, the target's shape replaces it.
Unvoiced frames are left alone: replacing fricatives too confused s, sh and f (on the tune voices of
`testkit/voices_dev.py`, Whisper's word errors rose from 5.5 % to 8.2 %).
"""

from __future__ import annotations

import functools
import math

import numpy as np

CODEBOOK_HZ = (80.0, 7600.0)  # the grid's span: under the Nyquist frequency of a 16 kHz recording
CODEBOOK_BINS = 48  # ERB-spaced points on CODEBOOK_HZ, about half an ERB apart
CODEBOOK_SIZE = 128  # centroids kept of a voice's voiced frames (about 40 KB as JSON)
MATCH_COEFFS = 24  # cepstral coefficients compared (c1..c24; c0 is the level, removed)
NEIGHBOURS = 4  # centroids averaged per frame: one alone makes the envelope jump from frame to frame
KEEP_BELOW_HZ = 1500.0  # where the frame keeps part of its own shape (F1 and F2 say which vowel it is)
KEEP_SHARE = 0.3  # how much of its own shape a frame keeps there; none above
KMEANS_ITERATIONS = 15
SMOOTH_FRAMES = 3.0  # Gaussian sigma of the correction over time, frames (15 ms): fewer word errors, no less like
CONTEXT_FRAMES = 6  # the kernel's reach either side (2 sigma): the frames a correction depends on


@functools.cache
def codebook_hz() -> np.ndarray:
    """The codebook grid in Hz, (CODEBOOK_BINS,), equally spaced on Glasberg and Moore's ERB-rate scale."""
    low, high = (21.4 * math.log10(1.0 + 0.00437 * f) for f in CODEBOOK_HZ)
    erb = np.linspace(low, high, CODEBOOK_BINS)
    return (10.0 ** (erb / 21.4) - 1.0) / 0.00437


def interpolation_matrix(hz_from: np.ndarray, hz_to: np.ndarray) -> np.ndarray:
    """The linear map (len(hz_from), len(hz_to)) that resamples rows given at `hz_from` onto `hz_to` (held flat
    beyond the ends), as `rows @ matrix`."""
    return np.stack([np.interp(hz_to, hz_from, column) for column in np.eye(len(hz_from))])


@functools.cache
def _cepstrum_matrix() -> np.ndarray:
    """Orthonormal DCT-II of a codebook row, coefficients 1..MATCH_COEFFS, as `rows @ matrix`."""
    n = np.arange(CODEBOOK_BINS)
    k = np.arange(1, MATCH_COEFFS + 1)
    return np.sqrt(2.0 / CODEBOOK_BINS) * np.cos(np.pi * (n[:, None] + 0.5) * k[None, :] / CODEBOOK_BINS)


def level_free(rows: np.ndarray) -> np.ndarray:
    """Rows on the codebook grid with each row's mean removed: shapes, not levels."""
    return rows - rows.mean(axis=1, keepdims=True)


def build_codebook(rows_db: np.ndarray) -> np.ndarray:
    """The codebook of a voice: k-means centroids (deterministic) of its voiced frames' level-free envelopes.

    Args:
        rows_db: (frames, CODEBOOK_BINS) log envelopes on `codebook_hz()`, dB.

    Returns:
        (min(CODEBOOK_SIZE, frames), CODEBOOK_BINS) centroids, dB, each row's mean 0.
    """
    x = level_free(np.asarray(rows_db, dtype=np.float64))
    k = min(CODEBOOK_SIZE, len(x))
    centroids = x[np.random.default_rng(0).choice(len(x), k, replace=False)].copy()
    for _ in range(KMEANS_ITERATIONS):
        distances = (x**2).sum(axis=1)[:, None] - 2.0 * x @ centroids.T + (centroids**2).sum(axis=1)[None, :]
        label = distances.argmin(axis=1)
        for j in range(k):
            members = label == j
            if members.any():  # an emptied centroid keeps its place
                centroids[j] = x[members].mean(axis=0)
    return centroids


class NeighbourCorrection:
    """A codebook precomputed for one WORLD bin layout; `apply` corrects voiced frames, each on its own."""

    def __init__(self, codebook_db: np.ndarray, fs: int, n_bins: int):
        hz = np.linspace(0.0, fs / 2, n_bins)
        grid = codebook_hz()
        self._to_grid = interpolation_matrix(hz, grid)
        self._from_grid = interpolation_matrix(grid, hz)
        self._book = codebook_db * (math.log(10.0) / 10.0)  # dB of power to ln of power, as WORLD frames are
        self._book_cepstra = self._book @ _cepstrum_matrix()
        self._weight = 1.0 - KEEP_SHARE / (1.0 + np.exp((grid - KEEP_BELOW_HZ) / (0.15 * KEEP_BELOW_HZ)))

    def apply(self, log_sp: np.ndarray, voiced: np.ndarray) -> np.ndarray:
        """Consecutive frames of `log_sp` (ln power per bin) moved towards the nearest centroids of their voiced
        frames, the moves smoothed over time (frames near voiced ones move a little too).

        Frames closer than CONTEXT_FRAMES to either end are corrected as if the ends held still: give the frames
        around the ones wanted, and keep the middle.
        """
        delta = np.zeros((len(log_sp), CODEBOOK_BINS))
        if not np.any(voiced):
            return log_sp.copy()
        rows = level_free(log_sp[voiced] @ self._to_grid)
        cepstra = rows @ _cepstrum_matrix()
        distances = ((cepstra[:, None, :] - self._book_cepstra[None, :, :]) ** 2).sum(axis=2)
        k = min(NEIGHBOURS, len(self._book))
        nearest = np.argpartition(distances, k - 1, axis=1)[:, :k]
        delta[voiced] = self._book[nearest].mean(axis=1) - rows
        return log_sp + (_smooth_frames(delta) * self._weight) @ self._from_grid


def _smooth_frames(rows: np.ndarray) -> np.ndarray:
    """Gaussian smoothing over frames (axis 0), sigma SMOOTH_FRAMES, reach CONTEXT_FRAMES, ends held."""
    offsets = np.arange(-CONTEXT_FRAMES, CONTEXT_FRAMES + 1)
    kernel = np.exp(-0.5 * (offsets / SMOOTH_FRAMES) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(rows, ((CONTEXT_FRAMES, CONTEXT_FRAMES), (0, 0)), mode="edge")
    n = len(rows)
    return sum(w * padded[i : i + n] for i, w in enumerate(kernel))
