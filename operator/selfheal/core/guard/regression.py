"""The `Regression` rule: a patch's failure rate well above its own baseline (pure logic).

The runbook's thresholds are absolute (rollback rate > 20 %, failure rate > 50 %): a patch whose
failures go from 2 % to 10 % never crosses them, though it now fails five times as often. This
rule compares each patch with itself:

- baseline p0: the patch's failure rate over the 24 hours before the current hour (hourly
  rollups), never below `floor`; with fewer than `min_baseline_samples` applications there is
  no baseline and the rule is Inconclusive (its CUSUM rests at zero), never firing;
- a bank of CUSUMs of the log-likelihood ratio (guard/cusum.py, `fold_bank`) fed with the complete
  5-second buckets as they settle, one per alternative p1 = ratio x p0, the ratios a geometric grid
  around `factor` (`ratios`: factor/1.65, factor, x1.65, x1.65^2: 1.8x, 3x, 5x, 8.2x by default),
  since the ratio of a real regression is unknown; `bank_size = 1` is Page's CUSUM tuned for
  `factor` alone (what this rule was before the bank);
- h = ln(samples per day x budget) + ln K for K CUSUMs: the false-alarm budget holds whatever the
  traffic and however many ratios are watched.

Its action is a warning unless configured to deactivate (`RegressionSettings.deactivate`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from selfheal.core.guard import cusum
from selfheal.core.guard.cusum import RESTING, CusumState
from selfheal.core.guard.evaluate import Counts, RuleOutcome
from selfheal.core.guard.rules import REGRESSION_RULE, RegressionSettings, Rule

# The bank's grid: neighbouring ratios this far apart lose under 5 % of the evidence per sample
# to a ratio between them; ratios this close to 1 are left out (a CUSUM for them detects noise).
SPACING = 1.65
LOWEST_RATIO = 1.2

# S is kept below CEILING x h: once a regression is over, S falls back to zero (the warning clears)
# within a bounded number of healthy samples instead of paying back a whole day of evidence.
CEILING = 2.0


@dataclass(frozen=True)
class Baseline:
    """Applications of the 24 hours before the current hour, and how many of those hours the patch had."""

    total: int = 0
    failures: int = 0
    hours: float = 24.0  # from its first hourly bucket with data to the current hour, at most 24

    @property
    def samples_per_day(self) -> float:
        return self.total * 24.0 / self.hours if self.hours > 0 else 0.0


NO_BASELINE = Baseline(0, 0, 0.0)


def ratios(settings: RegressionSettings) -> tuple[float, ...]:
    """The regressions the bank is tuned for, as multiples of the baseline: `bank_size` ratios
    SPACING apart, one below `factor` and the others above it; those under LOWEST_RATIO left out."""
    grid = (settings.factor * SPACING ** (k - 1) for k in range(settings.bank_size))
    return (settings.factor,) if settings.bank_size == 1 else tuple(r for r in grid if r >= LOWEST_RATIO)


@dataclass(frozen=True)
class Design:
    p0: float
    p1: float  # the alternative `factor` stands for
    h: float  # the threshold of the highest CUSUM: ln(gamma) + ln K
    alternatives: tuple[float, ...] = ()  # p1 of each CUSUM of the bank

    @property
    def ceiling(self) -> float:
        return CEILING * self.h


def design(*, settings: RegressionSettings, baseline: Baseline) -> Design | None:
    """p0, p1 and h for one patch; None when its baseline is too thin to judge against, or already
    failing every call (nothing worse to detect; the absolute PatchFailing rule is the one for it)."""
    if baseline.total < max(settings.min_baseline_samples, 1) or baseline.failures >= baseline.total:
        return None
    p0 = max(settings.floor, baseline.failures / baseline.total)
    grid = ratios(settings)
    h = cusum.threshold(samples_per_day=baseline.samples_per_day, budget_days=settings.budget_patch_days)
    return Design(
        p0=p0,
        p1=cusum.alternative(p0, settings.factor),
        h=h + math.log(len(grid)),
        alternatives=tuple(cusum.alternative(p0, ratio) for ratio in grid),
    )


def advance(
    *, settings: RegressionSettings, baseline: Baseline, state: CusumState, buckets: Iterable[tuple[int, int]]
) -> CusumState:
    """The CUSUMs after new complete buckets (total, failures); at rest without a baseline."""
    plan = design(settings=settings, baseline=baseline) if settings.enabled else None
    if plan is None:
        return RESTING
    if len(plan.alternatives) == 1:  # Page's CUSUM, stored as it always was (no bank)
        return cusum.fold(state, buckets, p0=plan.p0, p1=plan.p1, h=plan.h, ceiling=plan.ceiling)
    return cusum.fold_bank(state, buckets, p0=plan.p0, alternatives=plan.alternatives, h=plan.h, ceiling=plan.ceiling)


@dataclass(frozen=True)
class RegressionOutcome(RuleOutcome):
    """A RuleOutcome with the CUSUM's figures; `counts` are the calls of the current rise."""

    baseline: Baseline = NO_BASELINE
    design: Design | None = None
    statistic: float = 0.0

    def describe(self) -> str:
        base = self.baseline
        if self.design is None:
            return f"{self.rule.name}: no baseline ({base.total} applications in 24 h)"
        counts, plan = self.counts, self.design
        return (
            f"{self.rule.name}: failure rate {self.value:.1%} = {counts.failures}/{counts.total} since the rise "
            f"began, baseline {plan.p0:.1%} ({base.failures}/{base.total} over 24 h); "
            f"CUSUM {self.statistic:.1f} {'crossed' if self.firing else 'under'} h = {plan.h:.1f} "
            f"(tuned for {plan.p1:.1%}{_range(plan)})"
        )

    def details(self) -> dict[str, object]:
        plan = self.design
        return {
            "baseline_total": self.baseline.total,
            "baseline_failures": self.baseline.failures,
            "p0": plan and round(plan.p0, 6),
            "p1": plan and round(plan.p1, 6),
            "cusum": round(self.statistic, 4),
            "h": plan and round(plan.h, 4),
        }


def _range(plan: Design) -> str:
    if len(plan.alternatives) < 2:
        return ""
    return f", watching {min(plan.alternatives):.1%} to {max(plan.alternatives):.1%}"


def judge(*, settings: RegressionSettings, baseline: Baseline, state: CusumState) -> RegressionOutcome:
    """The rule's outcome for one patch whose CUSUM stands at `state`."""
    plan = design(settings=settings, baseline=baseline)
    rule = Rule(REGRESSION_RULE, "failure", plan.p1 if plan else 0.0, 0, 0, settings.action)
    counts = Counts(total=state.total, failures=state.failures, rollbacks=0)
    value = state.failures / state.total if state.total else 0.0
    # Fires when S crosses h, and holds until S is back at zero (no flapping around h).
    firing = plan is not None and (state.alarmed or state.statistic > plan.h)
    return RegressionOutcome(
        rule=rule,
        counts=counts,
        value=value,
        holds=firing,
        conclusive=plan is not None,
        pending_since=None,
        firing=firing,
        baseline=baseline,
        design=plan,
        statistic=state.statistic if plan else 0.0,
    )
