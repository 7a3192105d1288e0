"""The guard's rules and settings; defaults are the runbook's Prometheus alerts (pure logic).

Runbook alerts (spec/runbook.fr.md, "Alertes"):
  SelfHealHighRollbackRate  rollbacks / applications over 5m  > 0.2   for: 10m  -> deactivate
  SelfHealPatchFailing      failures / applications over 10m  > 0.5   for: 15m  -> deactivate
  SelfHealHighVolume        applications over 5m              > 100   for: 10m  -> warning
The runbook's volume expression uses `rate()`, which is per second, while its text says
"100 patches/min": our threshold is per minute, as the text says.

Beyond the runbook, `Regression` compares each patch with its own baseline (guard/regression.py):
a patch whose failures went from 2 % to 10 % never crosses the absolute thresholds above.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

Metric = Literal["rollback", "failure", "volume"]
Action = Literal["deactivate", "warn"]

ROLLBACK_RULE = "HighRollbackRate"
FAILURE_RULE = "PatchFailing"
VOLUME_RULE = "HighVolume"
REGRESSION_RULE = "Regression"

# Rollups: short windows use 5-second buckets, longer ones minute buckets (see 0003_guard.sql).
FINE_BUCKET_SECONDS = 5
COARSE_BUCKET_SECONDS = 60
FINE_WINDOW_LIMIT = 120


def bucket_seconds(window_seconds: int) -> int:
    return FINE_BUCKET_SECONDS if window_seconds < FINE_WINDOW_LIMIT else COARSE_BUCKET_SECONDS


@dataclass(frozen=True)
class Rule:
    """One alert: `metric` over `window_seconds` above `threshold`, held for `for_seconds`."""

    name: str
    metric: Metric
    threshold: float  # a ratio in [0, 1] for rates; applications per minute for volume
    window_seconds: int
    for_seconds: int
    action: Action

    @property
    def is_rate(self) -> bool:
        return self.metric != "volume"


DEFAULT_RULES: tuple[Rule, ...] = (
    Rule(ROLLBACK_RULE, "rollback", 0.20, 300, 600, "deactivate"),
    Rule(FAILURE_RULE, "failure", 0.50, 600, 900, "deactivate"),
    Rule(VOLUME_RULE, "volume", 100.0, 300, 600, "warn"),
)


@dataclass(frozen=True)
class RegressionSettings:
    """The relative rule: a CUSUM of the failure rate against the patch's own 24 h baseline."""

    enabled: bool = True
    # The alternative the CUSUMs are tuned around: p1 = factor x p0 (regression.ratios: the grid around it).
    factor: float = 3.0
    # CUSUMs in the bank, one per ratio (the ratio of a real regression is unknown); 1: one CUSUM, for `factor`.
    bank_size: int = 4
    # False alarms: at most one per this many patch-days of a patch's own traffic (h = ln(samples/day x budget)).
    budget_patch_days: float = 10_000.0
    # p0 is never taken below this, so that a spotless baseline does not make one failure an alarm.
    floor: float = 0.005
    # Fewer applications in the baseline (24 h before the current hour) is Inconclusive: no CUSUM.
    min_baseline_samples: int = 2_000
    deactivate: bool = False  # by default a warning: a patch at 10 % failures still heals 90 % of calls

    @property
    def action(self) -> Action:
        return "deactivate" if self.deactivate else "warn"


@dataclass(frozen=True)
class GuardSettings:
    """How the guard judges one patch."""

    enabled: bool = True
    rules: tuple[Rule, ...] = DEFAULT_RULES
    # Below this many applications in a rule's window the verdict is Inconclusive.
    min_samples: int = 20
    # Early cut-off: deactivate without waiting out `for:` when the lower bound of the
    # confidence interval of the rate is above the threshold in one of these windows.
    early_cutoff: bool = True
    early_confidence: float = 0.999
    early_min_samples: int = 30
    early_windows_seconds: tuple[int, ...] = field(default=(5, 15, 60))
    regression: RegressionSettings = field(default_factory=RegressionSettings)

    def windows(self) -> frozenset[int]:
        """Every window the verdict needs counts for."""
        needed = {rule.window_seconds for rule in self.rules}
        if self.early_cutoff:
            needed |= set(self.early_windows_seconds)
        return frozenset(needed)

    def rule(self, name: str) -> Rule:
        return next(rule for rule in self.rules if rule.name == name)

    def with_rule(self, name: str, **changes: Any) -> GuardSettings:
        return replace(
            self, rules=tuple(replace(rule, **changes) if rule.name == name else rule for rule in self.rules)
        )
