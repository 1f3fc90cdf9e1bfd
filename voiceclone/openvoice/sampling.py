"""The converter's sampling temperature, tau: its default, its range, and the check. The one place for them.

OpenVoice draws the latent it converts from a Gaussian whose spread is scaled by tau: 0 is deterministic (the
mean), OpenVoice's default 0.3 adds a little life, and above 2 the voice falls apart.
"""

from __future__ import annotations

import math

TAU_DEFAULT = 0.3
TAU_MAX = 2.0


def check_tau(tau: float) -> float:
    """`tau` as a float if it is a finite number from 0 to TAU_MAX; ValueError (saying the range) otherwise."""
    try:
        value = float(tau)
    except (TypeError, ValueError):
        raise ValueError(f"tau must be a number from 0 to {TAU_MAX:g}, got {tau!r}") from None
    if not math.isfinite(value) or not 0 <= value <= TAU_MAX:
        raise ValueError(f"tau must be a number from 0 to {TAU_MAX:g}, got {tau!r}")
    return value
