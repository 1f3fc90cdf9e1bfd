"""From two voice profiles to a per-frame transform of WORLD parameters.

- F0: log F0 is shifted from the source's median to the target's and its excursions scaled by the ratio of the
  spreads, so intonation keeps its shape in the target's range.
- Envelope: the frequency axis is warped by a vocal-tract-length factor alpha (formants of a vocal tract scale
  inversely with its length; alpha > 1 moves them up), found by aligning the formant-scale structure of the two
  long-term envelopes; then a residual equaliser adds the remaining broad difference (spectral tilt, nasality,
  the microphone), smoothed over 1 ERB and limited so that it cannot make speech unintelligible. Unvoiced frames
  get their own equaliser, from the two voices' unvoiced envelopes (fricatives differ from voice to voice).
- Envelope movement: in voiced frames, each frame's departure from the source's long-term envelope is scaled, per
  frequency, by the ratio of the two voices' envelope spreads, so formants come out as sharp and as mobile as the
  target's (the mean and variance of the log envelope are both mapped, not the mean alone).
- Rendering of each sound: voiced frames, once mapped, are drawn towards the nearest shapes of the target's own
  voiced envelopes (`codebook.py`), when the target's profile has a codebook.
- Aperiodicity: shifted per band by the target's mean minus the source's, limited (breathiness).
- Every frame keeps its input energy: the transform changes the timbre, not the loudness contour.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from voiceclone.matcher.codebook import CONTEXT_FRAMES, NeighbourCorrection
from voiceclone.matcher.profile import AP_BANDS_HZ, PROFILE_RATE, VoiceProfile, grid_hz

ALPHA_RANGE = (0.8, 1.3)  # vocal tract lengths of adult speakers differ by about this much (children beyond)
ALPHA_STEP = 1.0037  # geometric grid over ALPHA_RANGE, 0.37 % apart, through 1.0 (a voice maps to itself exactly)
WARP_KNEE_HZ = 7000.0  # pure scaling below; above, the warp bends back to meet the identity at WARP_TOP_HZ
WARP_TOP_HZ = PROFILE_RATE / 2
FIT_LOW_HZ = 200.0  # below, the long-term envelope follows F0 more than the vocal tract
FIT_HIGH_HZ = 5000.0  # F1-F4 lie under 5 kHz for adult speech; above it the envelope is mostly noise and sibilants
SMOOTH_ERB = 2.0  # what the warp fit leaves out as broad shape (Gaussian sigma, ERB-rate units)
EQ_SMOOTH_ERB = 1.0  # equaliser smoothing: finer than the warp's, it also corrects the region of each formant
EQ_LIMIT_DB = 15.0  # largest boost or cut of the residual equaliser: a safety limit, rarely reached at 1 ERB
F0_RATIO_LIMITS = (0.5, 2.0)  # ratio of spreads; a monotone or an over-animated recording cannot push beyond
F0_OUT_HZ = (45.0, 800.0)  # converted F0 stays in what WORLD synthesises well
AP_LIMIT_DB = 6.0  # largest aperiodicity shift per band
SPREAD_LIMITS = (0.6, 1.6)  # envelope-spread ratio: enough to sharpen or soften formants, never to invert them
LEVEL_BAND_HZ = (100.0, 4000.0)  # a frame's level, as the profile measures it
AP_FLOOR = 0.001  # aperiodicity is an amplitude ratio; WORLD clamps to this too


def warp_source_hz(f: np.ndarray, alpha: float) -> np.ndarray:
    """Where the warped envelope at frequency `f` reads the source envelope: f / alpha up to the knee, then linear
    to WARP_TOP_HZ (which maps to itself), identity above.

    Args:
        f: Frequencies in Hz (>= 0).
        alpha: Warp factor in ALPHA_RANGE; > 1 moves formants up.

    Returns:
        Source frequencies in Hz, same shape, monotonic in `f`.
    """
    f = np.asarray(f, dtype=np.float64)
    knee_src = WARP_KNEE_HZ / alpha
    upper = knee_src + (f - WARP_KNEE_HZ) * (WARP_TOP_HZ - knee_src) / (WARP_TOP_HZ - WARP_KNEE_HZ)
    return np.where(f <= WARP_KNEE_HZ, f / alpha, np.where(f <= WARP_TOP_HZ, upper, f))


def _erb_rate(f: np.ndarray) -> np.ndarray:
    """Glasberg and Moore's ERB-rate scale (ERB numbers) of frequencies in Hz."""
    return 21.4 * np.log10(1.0 + 0.00437 * np.asarray(f, dtype=np.float64))


def smooth_erb(curve: np.ndarray, hz: np.ndarray, sigma_erb: float = SMOOTH_ERB) -> np.ndarray:
    """Gaussian smoothing of a curve sampled at `hz`, with a width constant on the ERB-rate scale.

    Args:
        curve: Values (e.g. dB) at the frequencies `hz`.
        hz: Ascending frequencies in Hz.
        sigma_erb: Standard deviation of the Gaussian in ERB numbers.

    Returns:
        The smoothed curve at `hz`.
    """
    erb = _erb_rate(hz)
    step = 0.1
    uniform = np.arange(erb[0], erb[-1] + step, step)
    values = np.interp(uniform, erb, curve)
    half = int(math.ceil(3 * sigma_erb / step))
    kernel = np.exp(-0.5 * (np.arange(-half, half + 1) * step / sigma_erb) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(values, half, mode="edge")
    return np.interp(erb, uniform, np.convolve(padded, kernel, mode="valid"))


def warp_curve(curve: np.ndarray, hz: np.ndarray, alpha: float) -> np.ndarray:
    """A curve sampled at `hz` (a long-term envelope in dB) with its frequency axis warped by `alpha`."""
    return np.interp(warp_source_hz(hz, alpha), hz, curve)


def fit_band(source: VoiceProfile, target: VoiceProfile) -> np.ndarray:
    """Boolean mask of the profile grid where both recordings carry formant information."""
    hz = grid_hz()
    top = min(FIT_HIGH_HZ, 0.9 * source.bandwidth_hz, 0.9 * target.bandwidth_hz)
    return (hz >= FIT_LOW_HZ) & (hz <= top)


def estimate_alpha(source: VoiceProfile, target: VoiceProfile) -> float:
    """The vocal-tract-length warp factor that best aligns the source's long-term envelope with the target's.

    Only formant-scale structure is compared (each envelope minus its SMOOTH_ERB-smoothed self): broad tilt is the
    equaliser's job, and would otherwise pull the warp.

    Args:
        source: The base voice's profile.
        target: The enrolled voice's profile.

    Returns:
        alpha in ALPHA_RANGE (1.0 = same vocal tract length).
    """
    hz = grid_hz()
    band = fit_band(source, target)
    detail = _detail_matrix()[band]  # rows of the band only: the rest is not compared
    step = math.log(ALPHA_STEP)
    alphas = np.exp(np.arange(math.ceil(math.log(ALPHA_RANGE[0]) / step), math.log(ALPHA_RANGE[1]) / step) * step)
    warped = np.stack([warp_curve(source.envelope_db, hz, alpha) for alpha in alphas])
    residual = warped @ detail.T - detail @ target.envelope_db
    return float(alphas[int(np.argmin(np.mean(residual**2, axis=1)))])


@functools.cache
def _detail_matrix() -> np.ndarray:
    """A curve on the profile grid minus its `smooth_erb` (a linear map) as a matrix: detail = matrix @ curve."""
    hz = grid_hz()
    smoother = np.stack([smooth_erb(column, hz) for column in np.eye(len(hz))], axis=1)
    return np.eye(len(hz)) - smoother


def residual_eq_db(source: VoiceProfile, target: VoiceProfile, alpha: float, unvoiced: bool = False) -> np.ndarray:
    """The equaliser (dB on the profile grid) that takes the warped source's long-term envelope to the target's.

    Smoothed over SMOOTH_ERB, level-free over the fit band, limited to +-EQ_LIMIT_DB, and held flat outside the band
    both recordings carry (a 16 kHz recording says nothing about 8-11 kHz). With `unvoiced`, of the two voices'
    unvoiced envelopes.
    """
    hz = grid_hz()
    if unvoiced:
        diff = target.unvoiced_envelope_db - warp_curve(source.unvoiced_envelope_db, hz, alpha)
    else:
        diff = target.envelope_db - warp_curve(source.envelope_db, hz, alpha)
    return _smooth_within_band(diff, source, target, EQ_LIMIT_DB, centre=True)


def spread_gain(source: VoiceProfile, target: VoiceProfile, alpha: float) -> np.ndarray:
    """Per frequency on the profile grid, how much to scale a voiced frame's departure from the long-term envelope.

    The ratio of the target's envelope spread to the warped source's, smoothed over SMOOTH_ERB in the log domain,
    within SPREAD_LIMITS, 1 outside the band both recordings carry.
    """
    hz = grid_hz()
    ratio_db = 20.0 * np.log10(
        np.maximum(target.envelope_spread_db, 0.1) / np.maximum(warp_curve(source.envelope_spread_db, hz, alpha), 0.1)
    )
    limit = 20.0 * math.log10(SPREAD_LIMITS[1])
    gain = 10.0 ** (_smooth_within_band(ratio_db, source, target, limit, centre=False) / 20.0)
    return np.clip(gain, *SPREAD_LIMITS)


def _smooth_within_band(
    diff: np.ndarray, source: VoiceProfile, target: VoiceProfile, limit: float, centre: bool
) -> np.ndarray:
    """A difference curve in dB held flat outside the shared band, smoothed, optionally level-free, limited."""
    hz = grid_hz()
    diff = diff.copy()
    band = fit_band(source, target)
    top = min(source.bandwidth_hz, target.bandwidth_hz)
    # Hold the difference flat above the shared bandwidth before smoothing, so the edge does not leak into it.
    edge = np.flatnonzero(hz <= top)[-1]
    diff[edge + 1 :] = diff[edge]
    low = np.flatnonzero(hz >= FIT_LOW_HZ)[0]
    diff[:low] = diff[low]
    eq = smooth_erb(diff, hz, EQ_SMOOTH_ERB)
    if centre:
        eq -= eq[band].mean()
    return np.clip(eq, -limit, limit)


@dataclass(frozen=True)
class Mapping:
    """What the matcher does to every frame, from a source voice to a target voice.

    Attributes:
        log_f0_from: Source's median ln F0.
        log_f0_to: Target's median ln F0.
        f0_ratio: Scale of ln F0 excursions around the median (F0_RATIO_LIMITS).
        alpha: Vocal-tract-length warp factor (ALPHA_RANGE).
        eq_db: (GRID_BINS,) residual equaliser of voiced frames in dB on the profile grid.
        ap_shift_db: (bands,) aperiodicity shift per AP_BANDS_HZ band, dB.
        eq_unvoiced_db: (GRID_BINS,) residual equaliser of unvoiced frames, dB.
        spread_gain: (GRID_BINS,) scale of a voiced frame's departure from the source's long-term envelope.
        source_envelope_db: (GRID_BINS,) the source's long-term envelope warped by alpha, dB: what departures are
            measured from.
        codebook_db: The target's voiced codebook (`VoiceProfile.voiced_codebook_db`), or None: no per-frame step.
    """

    log_f0_from: float
    log_f0_to: float
    f0_ratio: float
    alpha: float
    eq_db: np.ndarray
    ap_shift_db: np.ndarray
    eq_unvoiced_db: np.ndarray
    spread_gain: np.ndarray
    source_envelope_db: np.ndarray
    codebook_db: np.ndarray | None = None

    @classmethod
    def between(cls, source: VoiceProfile, target: VoiceProfile) -> Mapping:
        """The mapping from `source` (the base voice) to `target` (the enrolled voice)."""
        alpha = estimate_alpha(source, target)
        ratio = target.log_f0_spread / max(source.log_f0_spread, 1e-3)
        return cls(
            log_f0_from=source.log_f0_median,
            log_f0_to=target.log_f0_median,
            f0_ratio=float(np.clip(ratio, *F0_RATIO_LIMITS)),
            alpha=alpha,
            eq_db=residual_eq_db(source, target, alpha),
            ap_shift_db=np.clip(target.aperiodicity_db - source.aperiodicity_db, -AP_LIMIT_DB, AP_LIMIT_DB),
            eq_unvoiced_db=residual_eq_db(source, target, alpha, unvoiced=True),
            spread_gain=spread_gain(source, target, alpha),
            source_envelope_db=warp_curve(source.envelope_db, grid_hz(), alpha),
            codebook_db=target.voiced_codebook_db,
        )

    def map_f0(self, f0: np.ndarray) -> np.ndarray:
        """Converted F0 in Hz per frame (0 stays 0 = unvoiced)."""
        voiced = f0 > 0
        log_f0 = np.log(np.where(voiced, f0, 1.0))
        mapped = np.exp(self.log_f0_to + self.f0_ratio * (log_f0 - self.log_f0_from))
        return np.where(voiced, np.clip(mapped, *F0_OUT_HZ), 0.0)

    def for_rate(self, fs: int, n_bins: int) -> FrameTransform:
        """This mapping on the frequency bins of WORLD analysis at `fs` Hz with `n_bins` bins (fft_size / 2 + 1)."""
        return FrameTransform(self, fs, n_bins)


class FrameTransform:
    """A Mapping precomputed for one bin layout; `apply` transforms consecutive frames.

    Each frame's result depends on the frames up to `context_frames` either side of it (0: on itself alone).
    """

    def __init__(self, mapping: Mapping, fs: int, n_bins: int):
        self.mapping = mapping
        hz = np.linspace(0.0, fs / 2, n_bins)
        src_bin = np.clip(warp_source_hz(hz, mapping.alpha) / (fs / 2) * (n_bins - 1), 0, n_bins - 1)
        self._left = np.minimum(np.floor(src_bin).astype(np.int64), n_bins - 2)
        self._frac = src_bin - self._left
        # dB of power to natural log of power; the profile grid stops at PROFILE_RATE / 2, held flat above.
        to_ln = math.log(10.0) / 10.0
        self._eq_ln = np.interp(hz, grid_hz(), mapping.eq_db) * to_ln
        self._eq_unvoiced_ln = np.interp(hz, grid_hz(), mapping.eq_unvoiced_db) * to_ln
        self._spread = np.interp(hz, grid_hz(), mapping.spread_gain) - 1.0
        self._source_ln = np.interp(hz, grid_hz(), mapping.source_envelope_db) * to_ln
        self._level_band = (hz >= LEVEL_BAND_HZ[0]) & (hz <= LEVEL_BAND_HZ[1])
        ap_hz = [(lo + hi) / 2 for lo, hi in zip(AP_BANDS_HZ[:-1], AP_BANDS_HZ[1:], strict=True)]
        self._ap_gain = 10.0 ** (np.interp(hz, ap_hz, mapping.ap_shift_db) / 20.0)
        codebook = mapping.codebook_db
        self._neighbours = None if codebook is None else NeighbourCorrection(codebook, fs, n_bins)
        # Frames a converted frame depends on either side of it (the codebook step is smoothed over time).
        self.context_frames = 0 if codebook is None else CONTEXT_FRAMES

    def apply(self, f0: np.ndarray, sp: np.ndarray, ap: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Converted F0, envelope and aperiodicity for consecutive frames of source-voice speech.

        Frames within `context_frames` of either end are converted as if the speech held still past it: pass
        that many frames of context on both sides and keep the middle.

        Args:
            f0: (n,) F0 in Hz, 0 = unvoiced.
            sp: (n, bins) spectral envelope (power).
            ap: (n, bins) aperiodicity in [0, 1].

        Returns:
            (f0, sp, ap) converted, new arrays, C-contiguous float64, each frame's envelope power as before.
        """
        log_sp = np.log(np.maximum(sp, 1e-30))
        warped = (1.0 - self._frac) * log_sp[:, self._left] + self._frac * log_sp[:, self._left + 1]
        voiced = (f0 > 0)[:, None]
        # A voiced frame's departure from the long-term envelope (its own level removed), scaled to the target's.
        departure = warped - self._source_ln
        departure -= departure[:, self._level_band].mean(axis=1, keepdims=True)
        shaped = warped + np.where(voiced, self._eq_ln + self._spread * departure, self._eq_unvoiced_ln)
        if self._neighbours is not None:
            shaped = self._neighbours.apply(shaped, f0 > 0)
        # Per-frame energy: the output frame has the input frame's envelope power.
        gain = np.log(np.sum(sp, axis=1) + 1e-30) - np.log(np.sum(np.exp(shaped), axis=1) + 1e-30)
        new_sp = np.exp(shaped + gain[:, None])
        new_ap = np.where(voiced, np.clip(ap * self._ap_gain, AP_FLOOR, 1.0), ap)
        return (
            np.ascontiguousarray(self.mapping.map_f0(f0)),
            np.ascontiguousarray(new_sp),
            np.ascontiguousarray(new_ap),
        )
