"""Page's CUSUM on failure counts: the sequential change detector for a Bernoulli rate (pure logic).

Before a regression a call fails with probability p0, after it with p1 > p0. A bucket of `n`
calls with `f` failures adds its log-likelihood ratio

    f ln(p1/p0) + (n - f) ln((1 - p1)/(1 - p0))

to the statistic S, which never goes below zero (S = max(0, S + llr)): evidence for the baseline
does not bank. The detector fires when S > h. Its mean run between false alarms is at least
e^h samples, and Lorden (1971) showed that no detector with a mean run of at least `gamma`
samples between false alarms can have a worst-case mean delay below ln(gamma) / KL(p1 || p0)
samples, a bound the CUSUM with h = ln(gamma) reaches as gamma grows.

The ratio of a real regression is unknown, and a CUSUM tuned for 3x is slow on 2x and leaves
samples on the table at 5x or 10x. `fold_bank` runs a bank of CUSUMs, one per ratio of a
geometric grid, and fires when the highest crosses h + ln K (K CUSUMs): each then raises false
alarms at most once per e^(h + ln K) samples, all K together at most once per e^h, the same budget
as one CUSUM. This is the discrete form of the GLR / mixture CUSUM over the unknown ratio (Lorden
1971, Lai 1998): it pays ln K in the threshold, and near nothing between neighbouring grid points
(the loss is second order in the distance), to be near Lorden's bound at every ratio of the grid.

The arithmetic is written with plain operators and injectable `log`, `minimum` and `maximum` so
that the simulation bench runs the same formulas on numpy arrays.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

# math.log, min, max, or numpy's: the simulation bench passes arrays through the same formulas.
Numeric = Callable[..., Any]


@dataclass(frozen=True)
class CusumState:
    """S, the calls folded in since S last stood at zero (what the current rise is made of), and
    whether S has crossed h since then: an alarm holds until S is back at zero, so that it does not
    flap on and off while S hovers around h. For a bank of CUSUMs, `bank` holds each one's S and
    `statistic` is the highest of them (so S = 0 still means all at rest); () when all are at zero."""

    statistic: float = 0.0
    total: int = 0
    failures: int = 0
    alarmed: bool = False
    bank: tuple[float, ...] = ()


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


def fold_bank(
    state: CusumState,
    buckets: Iterable[tuple[int, int]],
    *,
    p0: float,
    alternatives: Sequence[float],
    h: float = math.inf,
    ceiling: float = math.inf,
) -> CusumState:
    """`fold` for a bank of CUSUMs, one per alternative p1 in `alternatives`, each S_k kept in
    [0, ceiling]; `statistic` is max S_k, alarmed once above `h` (give h + ln K: see the module).
    When every S_k is at zero the calls behind them and the alarm are forgotten, as in `fold`.

    A state saved without a bank of this size (a single CUSUM's, or another grid's) starts each
    S_k at its statistic: the evidence and any alarm carry over."""
    steps = [weights(p0, p1) for p1 in alternatives]
    bank = list(state.bank) if len(state.bank) == len(steps) else [state.statistic] * len(steps)
    statistic, total, failures, alarmed = state.statistic, state.total, state.failures, state.alarmed
    for n, f in buckets:
        total, failures = total + n, failures + f
        for k, (on_failure, on_success) in enumerate(steps):
            bank[k] = min(max(0.0, bank[k] + f * on_failure + (n - f) * on_success), ceiling)
        statistic = max(bank, default=0.0)
        if statistic <= 0.0:
            bank, total, failures, alarmed = [0.0] * len(steps), 0, 0, False
        else:
            alarmed = alarmed or statistic > h
    if statistic <= 0.0:
        return RESTING
    return CusumState(statistic, total, failures, alarmed, tuple(bank))


def kl_divergence(p: Any, q: Any, *, log: Numeric = math.log) -> Any:
    """KL(Bernoulli(p) || Bernoulli(q)) in nats, 0 < p, q < 1."""
    return p * log(p / q) + (1 - p) * log((1 - p) / (1 - q))


def lorden_delay(*, gamma: Any, p1: Any, p0: Any, log: Numeric = math.log) -> Any:
    """The least worst-case mean number of samples any detector needs to see a change from p0 to
    p1 when it may raise a false alarm no more than once every `gamma` samples."""
    return log(gamma) / kl_divergence(p1, p0, log=log)
