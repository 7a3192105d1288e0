"""The guard's pure logic: `for:` semantics on a controlled clock, minimum samples, early cut-off."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from selfheal.core.guard.evaluate import HEALTHY, INCONCLUSIVE, Counts, evaluate
from selfheal.core.guard.pending import advance
from selfheal.core.guard.rules import FAILURE_RULE, ROLLBACK_RULE, VOLUME_RULE, GuardSettings
from selfheal.core.guard.spec import settings_for
from selfheal.core.guard.stats import wilson_lower_bound, z_score

NO_EARLY = GuardSettings(early_cutoff=False)


class Clock:
    """Evaluations at chosen instants; nothing sleeps."""

    def __init__(self, settings: GuardSettings) -> None:
        self.settings, self.pending, self.now = settings, {}, 1_000_000.0

    def evaluate(self, *, at: float, **windows: Counts):
        self.now = 1_000_000.0 + at
        verdict = evaluate(
            settings=self.settings,
            windows={int(k[1:]): v for k, v in windows.items()},
            pending=self.pending,
            now=self.now,
        )
        self.pending = verdict.pending
        return verdict


BAD_ROLLBACKS = Counts(total=100, failures=30, rollbacks=30)
GOOD = Counts(total=100, failures=5, rollbacks=5)


def test_defaults_are_the_runbook_alerts():
    rules = {rule.name: rule for rule in GuardSettings().rules}
    assert (rules[ROLLBACK_RULE].threshold, rules[ROLLBACK_RULE].window_seconds, rules[ROLLBACK_RULE].for_seconds) == (
        0.2,
        300,
        600,
    )
    assert (rules[FAILURE_RULE].threshold, rules[FAILURE_RULE].window_seconds, rules[FAILURE_RULE].for_seconds) == (
        0.5,
        600,
        900,
    )
    assert (rules[VOLUME_RULE].threshold, rules[VOLUME_RULE].for_seconds, rules[VOLUME_RULE].action) == (
        100.0,
        600,
        "warn",
    )


def test_pending_then_firing_exactly_at_for():
    clock = Clock(NO_EARLY)
    first = clock.evaluate(at=0, w300=BAD_ROLLBACKS, w600=GOOD)
    assert (first.state, first.action) == (f"Pending: {ROLLBACK_RULE}", "none")
    assert clock.evaluate(at=599.9, w300=BAD_ROLLBACKS, w600=GOOD).action == "none"
    firing = clock.evaluate(at=600, w300=BAD_ROLLBACKS, w600=GOOD)
    assert (firing.state, firing.action) == (f"Firing: {ROLLBACK_RULE}", "deactivate")
    assert "30/100" in firing.message() and "300s" in firing.message()


def test_one_good_evaluation_resets_pending():
    clock = Clock(NO_EARLY)
    clock.evaluate(at=0, w300=BAD_ROLLBACKS, w600=GOOD)
    assert clock.evaluate(at=590, w300=GOOD, w600=GOOD).state == HEALTHY
    assert clock.evaluate(at=600, w300=BAD_ROLLBACKS, w600=GOOD).state == f"Pending: {ROLLBACK_RULE}"
    assert clock.evaluate(at=1199, w300=BAD_ROLLBACKS, w600=GOOD).action == "none"
    assert clock.evaluate(at=1200, w300=BAD_ROLLBACKS, w600=GOOD).action == "deactivate"


def test_a_missed_evaluation_keeps_pending():
    # The loop does not evaluate while the registry is down: the next evaluation continues.
    clock = Clock(NO_EARLY)
    clock.evaluate(at=0, w300=BAD_ROLLBACKS)
    assert clock.evaluate(at=700, w300=BAD_ROLLBACKS).action == "deactivate"


def test_advance_is_prometheus_for():
    assert advance(pending_since=None, holds=True, now=10, for_seconds=0).firing
    assert advance(pending_since=None, holds=True, now=10, for_seconds=5).pending_since == 10
    assert advance(pending_since=3, holds=False, now=10, for_seconds=5).pending_since is None


def test_few_samples_are_inconclusive_never_a_deactivation():
    clock = Clock(GuardSettings())
    # 2 rollbacks out of 5 calls, sustained for an hour.
    for at in range(0, 3600, 2):
        verdict = clock.evaluate(at=at, w5=Counts(5, 2, 2), w300=Counts(5, 2, 2), w600=Counts(5, 2, 2))
        assert (verdict.state, verdict.action) == (INCONCLUSIVE, "none")
    assert clock.evaluate(at=3600).state == INCONCLUSIVE  # no data at all


def test_inconclusive_resets_pending():
    clock = Clock(NO_EARLY)
    clock.evaluate(at=0, w300=BAD_ROLLBACKS)
    assert clock.evaluate(at=300, w300=Counts(3, 1, 1)).state == INCONCLUSIVE
    assert clock.evaluate(at=600, w300=BAD_ROLLBACKS).action == "none"


def test_early_cutoff_fires_on_a_clearly_broken_patch():
    broken = Counts(total=40, failures=20, rollbacks=20)
    verdict = Clock(GuardSettings()).evaluate(at=0, w5=broken)
    assert verdict.action == "deactivate" and verdict.cause.early
    assert "early cut-off" in verdict.message() and "over 5s" in verdict.message()


def test_early_cutoff_waits_for_enough_samples_and_is_optional():
    assert Clock(GuardSettings()).evaluate(at=0, w5=Counts(10, 10, 10)).action == "none"
    assert Clock(NO_EARLY).evaluate(at=0, w5=Counts(400, 200, 200), w300=Counts(400, 200, 200)).action == "none"


def test_noisy_but_healthy_rates_never_cut_off_early():
    # 10 % rollbacks (the runbook's daily limit) observed as 6/30 and 30/200 stays below the bar.
    for counts in (Counts(30, 6, 6), Counts(200, 30, 30), Counts(1000, 150, 150)):
        assert Clock(GuardSettings()).evaluate(at=0, w5=counts, w15=counts, w60=counts).action == "none"


def test_volume_warns_by_default_and_deactivates_when_configured():
    busy = Counts(total=600, failures=0, rollbacks=0)  # 120 per minute over 5 minutes
    clock = Clock(GuardSettings())
    assert clock.evaluate(at=0, w300=busy).state == f"Pending: {VOLUME_RULE}"
    verdict = clock.evaluate(at=600, w300=busy)
    assert (verdict.state, verdict.action) == (f"Warning: {VOLUME_RULE}", "warn")
    assert "120 applications/min" in verdict.message()
    strict = settings_for(base=GuardSettings(), spec={"volume": {"deactivate": True, "forSeconds": 0}})
    assert Clock(strict).evaluate(at=0, w300=busy).action == "deactivate"


def test_spec_overrides_and_bounds():
    settings = settings_for(
        base=GuardSettings(),
        spec={
            "minSamples": 50,
            "earlyCutoff": False,
            "rollbackRate": {"threshold": 0.1, "windowSeconds": 120, "forSeconds": 60},
        },
    )
    assert (settings.min_samples, settings.early_cutoff) == (50, False)
    assert settings.rule(ROLLBACK_RULE).window_seconds == 120
    assert settings.rule(FAILURE_RULE).threshold == 0.5
    for bad in (
        {"minSamples": 1},
        {"rollbackRate": {"threshold": 1.5}},
        {"failureRate": {"windowSeconds": 90}},
        {"unknown": True},
    ):
        with pytest.raises(ValidationError):
            settings_for(base=GuardSettings(), spec=bad)


def test_disabled_guard_never_acts():
    settings = settings_for(base=GuardSettings(), spec={"enabled": False})
    assert Clock(settings).evaluate(at=0, w5=Counts(400, 400, 400)).action == "none"


def test_wilson_lower_bound():
    z = z_score(confidence=0.99)
    assert z == pytest.approx(2.5758, abs=1e-3)
    assert wilson_lower_bound(events=0, total=0, z=z) == 0.0
    assert wilson_lower_bound(events=50, total=100, z=z) == pytest.approx(0.3753, abs=1e-3)
    assert wilson_lower_bound(events=100, total=100, z=z) < 1.0
