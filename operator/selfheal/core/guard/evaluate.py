"""One evaluation of one patch: counts per window in, verdict out (pure logic)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from selfheal.core.guard.pending import advance
from selfheal.core.guard.rules import GuardSettings, Rule
from selfheal.core.guard.stats import wilson_lower_bound, z_score

HEALTHY = "Healthy"
INCONCLUSIVE = "Inconclusive"
DEACTIVATED = "Deactivated"

Action = Literal["none", "warn", "deactivate"]


@dataclass(frozen=True)
class Counts:
    """Applications in one window: all, failed (`success = false`), rolled back."""

    total: int = 0
    failures: int = 0
    rollbacks: int = 0

    def events(self, metric: str) -> int:
        return self.failures if metric == "failure" else self.rollbacks


NO_DATA = Counts()


@dataclass(frozen=True)
class RuleOutcome:
    rule: Rule
    counts: Counts
    value: float  # the rate, or applications per minute for volume
    holds: bool
    conclusive: bool
    pending_since: float | None
    firing: bool
    early: bool = False  # fired by the early cut-off
    window_seconds: int = 0  # the window that proved it

    def describe(self) -> str:
        rule, counts = self.rule, self.counts
        if rule.metric == "volume":
            figure = f"{self.value:.0f} applications/min (threshold {rule.threshold:.0f}/min)"
        else:
            figure = (
                f"{rule.metric} rate {self.value:.1%} = {counts.events(rule.metric)}/{counts.total} "
                f"(threshold {rule.threshold:.0%})"
            )
        how = "early cut-off" if self.early else f"held for {rule.for_seconds}s"
        return f"{rule.name}: {figure} over {self.window_seconds}s, {how}"

    def details(self) -> dict[str, object]:
        """Figures of this rule beyond the common ones, for the audit row."""
        return {}


@dataclass(frozen=True)
class Verdict:
    state: str  # Healthy, Inconclusive, Pending: <rule>, Warning: <rule>, Firing: <rule>
    action: Action
    outcomes: tuple[RuleOutcome, ...]
    pending: dict[str, float]  # rule name -> pending since; what must be kept between evaluations
    cause: RuleOutcome | None = None

    def message(self) -> str:
        return self.cause.describe() if self.cause else self.state


# The verdicts of quiet patches, shared: most patches are quiet, and nothing mutates a verdict.
QUIET_VERDICTS = {
    state: Verdict(state=state, action="none", outcomes=(), pending={}) for state in (HEALTHY, INCONCLUSIVE)
}


def evaluate(
    *,
    settings: GuardSettings,
    windows: Mapping[int, Counts],
    pending: Mapping[str, float],
    now: float,
    regression: RuleOutcome | None = None,
) -> Verdict:
    """Judge one patch at `now` from its counts per window and the pending times kept so far.

    `regression` is the outcome of the relative rule (guard/regression.py), judged by the caller
    that keeps its CUSUM; it acts like the other rules but does not decide Healthy/Inconclusive.
    """
    if not settings.enabled:
        return Verdict(state="Disabled", action="none", outcomes=(), pending={})
    if not pending and (regression is None or not (regression.firing or regression.pending_since)):
        quiet = _quiet_state(settings, windows)
        if quiet is not None:
            return QUIET_VERDICTS[quiet]
    return evaluate_fully(settings=settings, windows=windows, pending=pending, now=now, regression=regression)


def evaluate_fully(
    *,
    settings: GuardSettings,
    windows: Mapping[int, Counts],
    pending: Mapping[str, float],
    now: float,
    regression: RuleOutcome | None = None,
) -> Verdict:
    """`evaluate` without the quiet-patch shortcut: every rule's outcome built and kept."""
    by_threshold = tuple(
        _rule_outcome(rule, settings=settings, windows=windows, pending=pending.get(rule.name), now=now)
        for rule in settings.rules
    )
    outcomes = by_threshold + ((regression,) if regression is not None else ())
    kept = {o.rule.name: o.pending_since for o in outcomes if o.pending_since is not None}
    pairs: tuple[tuple[Literal["deactivate", "warn"], str], ...] = (("deactivate", "Firing"), ("warn", "Warning"))
    for action, label in pairs:
        cause = next((o for o in outcomes if o.firing and o.rule.action == action), None)
        if cause:
            return Verdict(
                state=f"{label}: {cause.rule.name}", action=action, outcomes=outcomes, pending=kept, cause=cause
            )
    pending_one = next((o for o in outcomes if o.pending_since is not None), None)
    if pending_one:
        return Verdict(state=f"Pending: {pending_one.rule.name}", action="none", outcomes=outcomes, pending=kept)
    rate_outcomes = [o for o in by_threshold if o.rule.is_rate]
    conclusive = any(o.conclusive for o in rate_outcomes) or not rate_outcomes
    return Verdict(state=HEALTHY if conclusive else INCONCLUSIVE, action="none", outcomes=outcomes, pending=kept)


def _quiet_state(settings: GuardSettings, windows: Mapping[int, Counts]) -> str | None:
    """Healthy or Inconclusive when no rule can hold, turn pending or cut early on these counts;
    None when the full evaluation must look. Most patches are quiet: no outcome objects are built
    for them. This is the source of truth; the guard's windows query judges the same in SQL
    generated from the same rule objects (registry/guard_store.py, `_quiet_condition`)."""
    conclusive, has_rate = False, False
    for rule in settings.rules:
        counts = windows.get(rule.window_seconds, NO_DATA)
        if rule.metric == "volume":
            if counts.total * 60.0 / rule.window_seconds > rule.threshold:
                return None
            continue
        has_rate = True
        if counts.total >= settings.min_samples:
            conclusive = True
            if counts.total and counts.events(rule.metric) / counts.total > rule.threshold:
                return None
        if rule.action == "deactivate" and settings.early_cutoff:
            # The early cut-off needs a window with its minimum samples whose rate is above the
            # threshold (its lower bound is below the rate): see `_early_evidence`.
            least = max(settings.early_min_samples, settings.min_samples)
            for window in settings.early_windows_seconds:
                early = windows.get(window, NO_DATA)
                if early.total >= least and early.events(rule.metric) / early.total > rule.threshold:
                    return None
    return HEALTHY if conclusive or not has_rate else INCONCLUSIVE


def _rule_outcome(
    rule: Rule, *, settings: GuardSettings, windows: Mapping[int, Counts], pending: float | None, now: float
) -> RuleOutcome:
    counts = windows.get(rule.window_seconds, NO_DATA)
    if rule.metric == "volume":
        value = counts.total * 60.0 / rule.window_seconds
        conclusive = True
    else:
        value = counts.events(rule.metric) / counts.total if counts.total else 0.0
        # Too few samples is not evidence either way: it resets `for:` like a false expression.
        conclusive = counts.total >= settings.min_samples
    holds = conclusive and value > rule.threshold
    step = advance(pending_since=pending, holds=holds, now=now, for_seconds=rule.for_seconds)
    outcome = RuleOutcome(
        rule=rule,
        counts=counts,
        value=value,
        holds=holds,
        conclusive=conclusive,
        pending_since=step.pending_since,
        firing=step.firing,
        window_seconds=rule.window_seconds,
    )
    if not step.firing and rule.is_rate and rule.action == "deactivate" and settings.early_cutoff:
        early = _early_evidence(rule, settings=settings, windows=windows)
        if early is not None:
            window, early_counts = early
            events = early_counts.events(rule.metric)
            return RuleOutcome(
                rule=rule,
                counts=early_counts,
                value=events / early_counts.total,
                holds=True,
                conclusive=True,
                pending_since=step.pending_since or now,
                firing=True,
                early=True,
                window_seconds=window,
            )
    return outcome


def _early_evidence(rule: Rule, *, settings: GuardSettings, windows: Mapping[int, Counts]) -> tuple[int, Counts] | None:
    """The first window whose rate is above the threshold beyond reasonable doubt."""
    z = z_score(confidence=settings.early_confidence)
    for window in sorted({*settings.early_windows_seconds, rule.window_seconds}):
        counts = windows.get(window, NO_DATA)
        if counts.total < max(settings.early_min_samples, settings.min_samples):
            continue
        if wilson_lower_bound(events=counts.events(rule.metric), total=counts.total, z=z) > rule.threshold:
            return window, counts
    return None
