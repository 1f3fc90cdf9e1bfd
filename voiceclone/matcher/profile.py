"""A voice profile: the long-term acoustics of one voice that the matcher maps between.

Everything is measured by WORLD analysis at PROFILE_RATE over voiced frames:
- F0 in the log domain: median and a robust spread (the 10-90 % range scaled to a standard deviation);
- the long-term average spectral envelope in dB on a fixed linear frequency grid, its mean level removed;
- how much the envelope moves from sound to sound at each frequency (its spread over frames, each frame's level
  removed): sharp, strongly moving formants or flat, steady ones are part of how a voice sounds;
- the same average envelope over unvoiced speech (fricatives, aspiration), which differs from voice to voice
  independently of the voiced one;
- the long-term average aperiodicity in dB, per band (breathiness, and how noisy the recording is);
- a codebook of the shapes of its voiced envelopes (`codebook.py`): how this voice renders each sound;
- the bandwidth the recording really has (a 16 kHz recording has nothing above 8 kHz to match).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import soxr

from voiceclone.matcher.codebook import CODEBOOK_BINS, CODEBOOK_SIZE, build_codebook, codebook_hz, interpolation_matrix
from voiceclone.matcher.pitch import track_f0
from voiceclone.matcher.world import FRAME_PERIOD_MS, analyze, frame_count

MATCHER_VERSION = "m2"  # bump when the profile's format or what it means changes
PROFILE_RATE = 22050  # every profile is measured at this rate, so profiles compare whatever the recording's rate
GRID_BINS = 256  # envelope grid: 0 .. PROFILE_RATE / 2 in GRID_BINS points (43 Hz apart)
AP_BANDS_HZ = (0.0, 500.0, 1000.0, 2000.0, 3000.0, 4000.0, 6000.0, 8000.0, 11025.0)  # aperiodicity band edges
MIN_VOICED_S = 1.0  # less voiced speech than this gives F0 and envelope statistics too noisy to use
MIN_UNVOICED_S = 0.5  # unvoiced speech needed for its own average envelope
WEAK_FRAME_DB = 30.0  # voiced frames this far below the loud ones are mostly background, left out of averages
BANDWIDTH_DROP_DB = 40.0  # the envelope edge: where it falls this far below its 1-4 kHz level
MIN_BANDWIDTH_HZ = 3500.0  # telephone speech or narrower cannot be matched meaningfully
PROFILE_RMS = 0.1  # speech is brought to this RMS (-20 dBFS) before analysis; the profile is level-free anyway
MAX_PROFILE_S = 120.0  # longer speech is cut: the averages have long converged, and analysis costs time


class ProfileError(ValueError):
    """A profile cannot be made from this speech, or stored profile data is invalid. The message is one line."""


def grid_hz() -> np.ndarray:
    """The frequencies of the envelope grid in Hz, (GRID_BINS,), 0 to PROFILE_RATE / 2."""
    return np.linspace(0.0, PROFILE_RATE / 2, GRID_BINS)


@dataclass(frozen=True, eq=False)  # eq=False: comparing arrays with == has no single truth value
class VoiceProfile:
    """The long-term acoustics of a voice.

    Attributes:
        f0_median_hz: Median F0 of voiced frames, Hz (40-1000).
        log_f0_mean: Mean of ln(F0 / 1 Hz) over voiced frames.
        log_f0_spread: Robust standard deviation of ln F0 over voiced frames (0.01-1.5; 0.1 = about 10 %).
        envelope_db: (GRID_BINS,) mean log spectral envelope of voiced frames in dB on `grid_hz()`, mean removed.
        aperiodicity_db: (len(AP_BANDS_HZ) - 1,) mean aperiodicity of voiced frames per band, dB (<= 0).
        envelope_spread_db: (GRID_BINS,) standard deviation over voiced frames of each frame's log envelope (its
            level over 100-4000 Hz removed) in dB on `grid_hz()`.
        unvoiced_envelope_db: (GRID_BINS,) mean log envelope of unvoiced speech frames in dB, mean removed as for
            `envelope_db`.
        bandwidth_hz: Highest frequency the recording carries, Hz (MIN_BANDWIDTH_HZ to PROFILE_RATE / 2).
        voiced_s: Seconds of voiced speech measured.
        voiced_codebook_db: (up to CODEBOOK_SIZE, CODEBOOK_BINS) shapes of voiced envelopes in dB on
            `codebook.codebook_hz()`, or None: a profile stored before codebooks existed (no per-frame correction).
    """

    f0_median_hz: float
    log_f0_mean: float
    log_f0_spread: float
    envelope_db: np.ndarray
    aperiodicity_db: np.ndarray
    bandwidth_hz: float
    voiced_s: float
    envelope_spread_db: np.ndarray
    unvoiced_envelope_db: np.ndarray
    voiced_codebook_db: np.ndarray | None = None

    @property
    def log_f0_median(self) -> float:
        """ln of the median F0."""
        return math.log(self.f0_median_hz)

    def to_json(self) -> dict:
        """A JSON-serialisable dict (about 40 KB as JSON, 3 KB without a codebook) that `from_json` reads back."""
        data = {
            "matcher_version": MATCHER_VERSION,
            "sample_rate": PROFILE_RATE,
            "frame_period_ms": FRAME_PERIOD_MS,
            "f0_median_hz": round(float(self.f0_median_hz), 4),
            "log_f0_mean": round(float(self.log_f0_mean), 6),
            "log_f0_spread": round(float(self.log_f0_spread), 6),
            "envelope_db": [round(float(v), 3) for v in self.envelope_db],
            "aperiodicity_db": [round(float(v), 3) for v in self.aperiodicity_db],
            "bandwidth_hz": round(float(self.bandwidth_hz), 1),
            "voiced_s": round(float(self.voiced_s), 3),
            "envelope_spread_db": [round(float(v), 3) for v in self.envelope_spread_db],
            "unvoiced_envelope_db": [round(float(v), 3) for v in self.unvoiced_envelope_db],
        }
        if self.voiced_codebook_db is not None:
            data["voiced_codebook_db"] = [[round(float(v), 1) for v in row] for row in self.voiced_codebook_db]
        return data

    @classmethod
    def from_json(cls, data: object) -> VoiceProfile:
        """Read and validate a profile written by `to_json` (possibly from an untrusted archive).

        Args:
            data: The decoded JSON object.

        Returns:
            The profile.

        Raises:
            ProfileError: Anything missing, of the wrong type or shape, not finite, out of range, or made by
                another matcher version (the voice's speech can be profiled again).
        """
        if not isinstance(data, dict):
            raise ProfileError("voice profile: expected a JSON object")
        version = data.get("matcher_version")
        if version != MATCHER_VERSION:
            raise ProfileError(f"voice profile: made by matcher version {version!r}, this is {MATCHER_VERSION!r}")
        _expect_number(data, "sample_rate", PROFILE_RATE, PROFILE_RATE)
        _expect_number(data, "frame_period_ms", FRAME_PERIOD_MS, FRAME_PERIOD_MS)
        return cls(
            f0_median_hz=_expect_number(data, "f0_median_hz", 40.0, 1000.0),
            log_f0_mean=_expect_number(data, "log_f0_mean", math.log(40.0), math.log(1000.0)),
            log_f0_spread=_expect_number(data, "log_f0_spread", 0.0, 1.5),
            envelope_db=_expect_vector(data, "envelope_db", GRID_BINS, -200.0, 200.0),
            aperiodicity_db=_expect_vector(data, "aperiodicity_db", len(AP_BANDS_HZ) - 1, -200.0, 0.0),
            bandwidth_hz=_expect_number(data, "bandwidth_hz", MIN_BANDWIDTH_HZ, PROFILE_RATE / 2),
            voiced_s=_expect_number(data, "voiced_s", 0.0, 1e6),
            envelope_spread_db=_expect_vector(data, "envelope_spread_db", GRID_BINS, 0.0, 100.0),
            unvoiced_envelope_db=_expect_vector(data, "unvoiced_envelope_db", GRID_BINS, -200.0, 200.0),
            voiced_codebook_db=_expect_codebook(data, "voiced_codebook_db"),
        )


def _expect_number(data: dict, key: str, low: float, high: float) -> float:
    value = data.get(key)
    # bool is an int in Python; a profile never stores one.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProfileError(f"voice profile: {key} must be a number")
    value = float(value)
    if not math.isfinite(value) or not low <= value <= high:
        raise ProfileError(f"voice profile: {key} = {value} is outside [{low}, {high}]")
    return value


def _expect_vector(data: dict, key: str, length: int, low: float, high: float) -> np.ndarray:
    value = data.get(key)
    if not isinstance(value, list) or len(value) != length:
        raise ProfileError(f"voice profile: {key} must be a list of {length} numbers")
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in value):
        raise ProfileError(f"voice profile: {key} must hold numbers only")
    arr = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(arr)) or np.any(arr < low) or np.any(arr > high):
        raise ProfileError(f"voice profile: {key} holds values that are not finite or outside [{low}, {high}]")
    return arr


def _expect_codebook(data: dict, key: str) -> np.ndarray | None:
    """An optional matrix of CODEBOOK_BINS-long rows (1 to CODEBOOK_SIZE of them); None when absent."""
    if key not in data:
        return None  # written before codebooks existed: still a valid profile
    value = data[key]
    if not isinstance(value, list) or not 1 <= len(value) <= CODEBOOK_SIZE:
        raise ProfileError(f"voice profile: {key} must be a list of 1 to {CODEBOOK_SIZE} rows")
    rows = {f"{key}[{i}]": row for i, row in enumerate(value)}
    return np.stack([_expect_vector(rows, label, CODEBOOK_BINS, -200.0, 200.0) for label in rows])


def extract_profile(speech: np.ndarray, sample_rate: int) -> VoiceProfile:
    """Measure a voice's profile from its speech.

    Args:
        speech: Float mono speech, silence mostly removed, values in [-1, 1]. Any length; the first
            MAX_PROFILE_S seconds are used. 10 s or more gives stable statistics.
        sample_rate: Its rate in Hz (8000 to 192000); it is resampled to PROFILE_RATE.

    Returns:
        The profile.

    Raises:
        ProfileError: Fewer than MIN_VOICED_S seconds of voiced speech, or speech that is not finite or is
            narrower than MIN_BANDWIDTH_HZ.
        ValueError: Not a 1-D array or an impossible sample rate.
    """
    x = _prepare(speech, sample_rate)
    analysis = analyze(x, PROFILE_RATE, ap_every=2, center_hz=_rough_median_f0(x))
    voiced = analysis.f0 > 0
    sp_db = 10.0 * np.log10(np.maximum(analysis.sp, 1e-20))
    level = _frame_level_db(sp_db)
    unvoiced = ~voiced
    if np.any(voiced):
        loud = level > np.percentile(level[voiced], 95) - WEAK_FRAME_DB
        voiced &= loud
        unvoiced &= loud  # fricatives and aspiration, not the pauses
    voiced_s = float(voiced.sum()) * FRAME_PERIOD_MS / 1000.0
    if voiced_s < MIN_VOICED_S:
        raise ProfileError(
            f"too little voiced speech to profile the voice: {voiced_s:.1f} s found, "
            f"at least {MIN_VOICED_S:.0f} s needed"
        )
    log_f0 = np.log(analysis.f0[voiced])
    p10, p50, p90 = np.percentile(log_f0, [10, 50, 90])
    envelope = _to_grid(sp_db[voiced].mean(axis=0))
    bandwidth = _bandwidth_hz(envelope)
    if bandwidth < MIN_BANDWIDTH_HZ:
        raise ProfileError(f"the recording carries only {bandwidth:.0f} Hz of bandwidth; at least 4 kHz is needed")
    band = (grid_hz() >= 100.0) & (grid_hz() <= min(bandwidth, 8000.0))
    # Unvoiced speech is scarcer; with too little of it, the voiced envelope stands in (no unvoiced correction).
    enough_unvoiced = unvoiced.sum() * FRAME_PERIOD_MS / 1000.0 >= MIN_UNVOICED_S
    unvoiced_envelope = _to_grid(sp_db[unvoiced].mean(axis=0)) if enough_unvoiced else envelope
    spread = _to_grid(np.std(sp_db[voiced] - level[voiced, None], axis=0))
    return VoiceProfile(
        f0_median_hz=float(np.exp(p50)),
        log_f0_mean=float(log_f0.mean()),
        # For a normal distribution the 10-90 % range is 2.563 standard deviations; robust to octave slips.
        log_f0_spread=float(max((p90 - p10) / 2.563, 0.01)),
        envelope_db=envelope - envelope[band].mean(),
        aperiodicity_db=_band_aperiodicity_db(analysis.ap[voiced]),
        bandwidth_hz=bandwidth,
        voiced_s=voiced_s,
        envelope_spread_db=np.clip(spread, 0.0, 100.0),
        unvoiced_envelope_db=unvoiced_envelope - unvoiced_envelope[band].mean(),
        voiced_codebook_db=build_codebook(sp_db[voiced] @ _to_codebook_grid(sp_db.shape[1])),
    )


def _prepare(speech: np.ndarray, sample_rate: int) -> np.ndarray:
    """Validated float64 speech at PROFILE_RATE, at most MAX_PROFILE_S long."""
    x = np.asarray(speech)
    if x.ndim != 1:
        raise ValueError(f"speech must be mono (1-D), got shape {x.shape}")
    if (
        isinstance(sample_rate, bool)
        or not isinstance(sample_rate, (int, np.integer))
        or not (8000 <= sample_rate <= 192000)
    ):
        raise ValueError(f"sample_rate must be an integer between 8000 and 192000 Hz, got {sample_rate!r}")
    x = x[: int(MAX_PROFILE_S * sample_rate)].astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise ProfileError("the speech holds NaN or infinite samples")
    if sample_rate != PROFILE_RATE and len(x):
        x = soxr.resample(x, sample_rate, PROFILE_RATE)
    rms = float(np.sqrt(np.mean(x**2))) if len(x) else 0.0
    if rms > 1e-6:
        x = x * (PROFILE_RMS / rms)  # a quiet recording must not fall under the tracker's silence threshold
    if len(x) < PROFILE_RATE * MIN_VOICED_S:
        raise ProfileError(
            f"too little speech to profile the voice: {len(x) / PROFILE_RATE:.1f} s, at least {MIN_VOICED_S:.0f} s "
            "of voiced speech needed"
        )
    return x


def _rough_median_f0(x: np.ndarray) -> float | None:
    """A first, unconstrained estimate of the median F0 (Hz), to centre the real analysis on; None if unvoiced."""
    times = np.arange(frame_count(len(x), PROFILE_RATE)) * (FRAME_PERIOD_MS / 1000.0)
    f0 = track_f0(x, PROFILE_RATE, times)
    return float(np.median(f0[f0 > 0])) if np.any(f0 > 0) else None


def _bins_hz(n_bins: int) -> np.ndarray:
    """The frequencies of WORLD's envelope bins at PROFILE_RATE."""
    return np.linspace(0.0, PROFILE_RATE / 2, n_bins)


def _to_codebook_grid(n_bins: int) -> np.ndarray:
    """The map from WORLD's envelope bins at PROFILE_RATE to the codebook grid, as `rows @ matrix`."""
    return interpolation_matrix(_bins_hz(n_bins), codebook_hz())


def _frame_level_db(sp_db: np.ndarray) -> np.ndarray:
    """Each frame's level: its envelope's mean dB over 100-4000 Hz, where speech energy lies."""
    hz = _bins_hz(sp_db.shape[1])
    band = (hz >= 100.0) & (hz <= 4000.0)
    return sp_db[:, band].mean(axis=1)


def _to_grid(row: np.ndarray) -> np.ndarray:
    """A per-bin row (0 .. PROFILE_RATE / 2) resampled onto the fixed grid."""
    return np.interp(grid_hz(), np.linspace(0.0, PROFILE_RATE / 2, len(row)), row)


def _bandwidth_hz(envelope_db: np.ndarray) -> float:
    """The highest frequency before the envelope falls BANDWIDTH_DROP_DB under its 1-4 kHz level for good."""
    hz = grid_hz()
    ref = envelope_db[(hz >= 1000.0) & (hz <= 4000.0)].mean()
    alive = np.flatnonzero(envelope_db > ref - BANDWIDTH_DROP_DB)
    return float(hz[alive[-1]]) if len(alive) else 0.0


def _band_aperiodicity_db(ap: np.ndarray) -> np.ndarray:
    """Mean aperiodicity in dB per AP_BANDS_HZ band over the given frames, (bands,)."""
    hz = np.linspace(0.0, PROFILE_RATE / 2, ap.shape[1])
    ap_db = 20.0 * np.log10(np.clip(ap, 1e-4, 1.0)).mean(axis=0)
    out = []
    for low, high in zip(AP_BANDS_HZ[:-1], AP_BANDS_HZ[1:], strict=True):
        out.append(float(ap_db[(hz >= low) & (hz <= high)].mean()))
    return np.asarray(out)
