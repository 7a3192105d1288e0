"""Page's CUSUM on failure counts: the sequential change detector for a Bernoulli rate (pure logic).

Before a regression a call fails with probability p0, after it with p1 > p0. A bucket of `n`
calls with `f` failures adds its log-likelihood ratio

    f ln(p1/p0) + (n - f) ln((1 - p1)/(1 - p0))

to the statistic S, which never goes below zero (S = max(0, S + llr)): evidence for the baseline
does not bank. The detector fires when S > h. Its mean run between false alarms is at least
e^h samples, and Lorden (1971) showed that no detector with a mean run of at least `gamma`
samples between false alarms can have a worst-case mean delay below ln(gamma) / KL(p1 || p0)
samples, a bound the CUSUM with h = ln(gamma) reaches as gamma grows.

The arithmetic is written with plain operators and injectable `log`, `minimum` and `maximum` so
that the simulation bench runs the same formulas on numpy arrays.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

# math.log, min, max, or numpy's: the simulation bench passes arrays through the same formulas.
Numeric = Callable[..., Any]


@dataclass(frozen=True)
class CusumState:
    """S, the calls folded in since S last stood at zero (what the current rise is made of), and
    whether S has crossed h since then: an alarm holds until S is back at zero, so that it does not
    flap on and off while S hovers around h."""

    statistic: float = 0.0
    total: int = 0
    failures: int = 0
    alarmed: bool = False


RESTING = CusumState()


def weights(p0: Any, p1: Any, *, log: Numeric = math.log) -> tuple[Any, Any]:
    """What one failure and one success add to S: (ln(p1/p0), ln((1-p1)/(1-p0)))."""
    return log(p1 / p0), log((1 - p1) / (1 - p0))


def alternative(p0: Any, factor: Any, *, minimum: Numeric = min) -> Any:
    """p1 = factor x p0, kept at most halfway between p0 and 1 so that it stays a probability."""
    return minimum(factor * p0, (1 + p0) / 2)


def threshold(*, samples_per_day: Any, budget_days: Any, log: Numeric = math.log, maximum: Numeric = max) -> Any:
    """h = ln(gamma), gamma = samples per day x budget days: e^h samples between false alarms is
    at most one false alarm per `budget_days` days of this traffic, whatever the traffic. h >= 1."""
    return log(maximum(samples_per_day * budget_days, math.e))


def fold(
    state: CusumState,
    buckets: Iterable[tuple[int, int]],
    *,
    p0: float,
    p1: float,
    h: float = math.inf,
    ceiling: float = math.inf,
) -> CusumState:
    """S after the buckets (total, failures) in order, alarmed once above `h`; at zero it forgets
    the calls behind it and the alarm.

    `ceiling` bounds S from above so that, after a long regression, S falls back to zero within
    a bounded number of healthy samples once the rate is back to its baseline.
    """
    on_failure, on_success = weights(p0, p1)
    statistic, total, failures, alarmed = state.statistic, state.total, state.failures, state.alarmed
    for n, f in buckets:
        statistic += f * on_failure + (n - f) * on_success
        total, failures = total + n, failures + f
        if statistic <= 0.0:
            statistic, total, failures, alarmed = 0.0, 0, 0, False
        else:
            alarmed = alarmed or statistic > h
            statistic = min(statistic, ceiling)
    return CusumState(statistic, total, failures, alarmed)


def kl_divergence(p: Any, q: Any, *, log: Numeric = math.log) -> Any:
    """KL(Bernoulli(p) || Bernoulli(q)) in nats, 0 < p, q < 1."""
    return p * log(p / q) + (1 - p) * log((1 - p) / (1 - q))


def lorden_delay(*, gamma: Any, p1: Any, p0: Any, log: Numeric = math.log) -> Any:
    """The least worst-case mean number of samples any detector needs to see a change from p0 to
    p1 when it may raise a false alarm no more than once every `gamma` samples."""
    return log(gamma) / kl_divergence(p1, p0, log=log)
