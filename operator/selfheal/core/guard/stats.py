"""Confidence bounds for a rate (pure logic)."""

from __future__ import annotations

from functools import lru_cache
from statistics import NormalDist
from typing import Any


@lru_cache(maxsize=64)  # one or two confidences in use; the quantile is costly, asked per patch per cycle
def z_score(*, confidence: float) -> float:
    """Two-sided normal quantile: 0.99 -> 2.576."""
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson_lower_bound(*, events: int, total: int, z: float) -> float:
    """Lower bound of the Wilson score interval of `events / total`; 0 without data."""
    if total <= 0:
        return 0.0
    return float(wilson_core(events, total, z))


def wilson_core(events: Any, total: Any, z: float) -> Any:
    """The formula alone, with plain operators: the simulation bench passes numpy arrays (total > 0)."""
    p = events / total
    z2 = z * z
    centre = p + z2 / (2 * total)
    spread = z * ((p * (1 - p) / total + z2 / (4 * total * total)) ** 0.5)
    return (centre - spread) / (1 + z2 / total)
