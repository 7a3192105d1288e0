"""The `Regression` rule: a patch's failure rate well above its own baseline (pure logic).

The runbook's thresholds are absolute (rollback rate > 20 %, failure rate > 50 %): a patch whose
failures go from 2 % to 10 % never crosses them, though it now fails five times as often. This
rule compares each patch with itself:

- baseline p0: the patch's failure rate over the 24 hours before the current hour (hourly
  rollups), never below `floor`; with fewer than `min_baseline_samples` applications there is
  no baseline and the rule is Inconclusive (its CUSUM rests at zero), never firing;
- alternative p1 = factor x p0, and a CUSUM of the log-likelihood ratio (guard/cusum.py) fed
  with the complete 5-second buckets as they settle;
- h = ln(samples per day x budget): the false-alarm budget holds whatever the traffic.

Its action is a warning unless configured to deactivate (`RegressionSettings.deactivate`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from selfheal.core.guard import cusum
from selfheal.core.guard.cusum import RESTING, CusumState
from selfheal.core.guard.evaluate import Counts, RuleOutcome
from selfheal.core.guard.rules import REGRESSION_RULE, RegressionSettings, Rule

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


@dataclass(frozen=True)
class Design:
    p0: float
    p1: float
    h: float

    @property
    def ceiling(self) -> float:
        return CEILING * self.h


def design(*, settings: RegressionSettings, baseline: Baseline) -> Design | None:
    """p0, p1 and h for one patch; None when its baseline is too thin to judge against, or already
    failing every call (nothing worse to detect; the absolute PatchFailing rule is the one for it)."""
    if baseline.total < max(settings.min_baseline_samples, 1) or baseline.failures >= baseline.total:
        return None
    p0 = max(settings.floor, baseline.failures / baseline.total)
    return Design(
        p0=p0,
        p1=cusum.alternative(p0, settings.factor),
        h=cusum.threshold(samples_per_day=baseline.samples_per_day, budget_days=settings.budget_patch_days),
    )


def advance(
    *, settings: RegressionSettings, baseline: Baseline, state: CusumState, buckets: Iterable[tuple[int, int]]
) -> CusumState:
    """The CUSUM after new complete buckets (total, failures); at rest without a baseline."""
    plan = design(settings=settings, baseline=baseline) if settings.enabled else None
    if plan is None:
        return RESTING
    return cusum.fold(state, buckets, p0=plan.p0, p1=plan.p1, h=plan.h, ceiling=plan.ceiling)


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
            f"(tuned for {plan.p1:.1%})"
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
