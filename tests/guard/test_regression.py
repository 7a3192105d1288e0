"""The Regression rule's pure logic: the Bernoulli CUSUM, its threshold, floor and baseline."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from selfheal.core.guard import cusum, regression
from selfheal.core.guard.cusum import RESTING, CusumState
from selfheal.core.guard.evaluate import evaluate
from selfheal.core.guard.regression import Baseline
from selfheal.core.guard.rules import REGRESSION_RULE, GuardSettings, RegressionSettings
from selfheal.core.guard.spec import settings_for

SETTINGS = RegressionSettings()
# 2 % failures over 24 h at one application per second.
DAY = Baseline(total=86_400, failures=1_728, hours=24)


def test_design_is_p0_factor_and_the_budget_threshold():
    plan = regression.design(settings=SETTINGS, baseline=DAY)
    assert plan.p0 == pytest.approx(0.02) and plan.p1 == pytest.approx(0.06)
    assert plan.h == pytest.approx(math.log(86_400 * 10_000))
    # Samples per day from the hours the patch has had, not from a full day.
    young = regression.design(settings=SETTINGS, baseline=Baseline(total=7_200, failures=144, hours=2))
    assert young.h == pytest.approx(math.log(86_400 * 10_000))


def test_cusum_fires_at_the_computed_sample():
    plan = regression.design(settings=SETTINGS, baseline=DAY)
    on_failure, on_success = cusum.weights(plan.p0, plan.p1)
    # Only failures: each adds ln(p1/p0) = ln 3; the rule fires at the first one that takes S above h.
    expected = math.floor(plan.h / on_failure) + 1
    state = RESTING
    for sample in range(1, expected + 1):
        state = regression.advance(settings=SETTINGS, baseline=DAY, state=state, buckets=[(1, 1)])
        outcome = regression.judge(settings=SETTINGS, baseline=DAY, state=state)
        assert outcome.firing == (sample == expected), sample
    assert state.statistic == pytest.approx(expected * on_failure)
    assert (state.total, state.failures) == (expected, expected)
    # Once fired it holds while S is above zero, though S dips back under h: no flapping around h.
    dipped = regression.advance(settings=SETTINGS, baseline=DAY, state=state, buckets=[(40, 0)])
    assert dipped.statistic < plan.h and regression.judge(settings=SETTINGS, baseline=DAY, state=dipped).firing
    cleared = regression.advance(settings=SETTINGS, baseline=DAY, state=dipped, buckets=[(1000, 0)])
    assert cleared == RESTING and not regression.judge(settings=SETTINGS, baseline=DAY, state=cleared).firing
    # A bucket of 10 with 3 failures adds exactly 3 ln(p1/p0) + 7 ln((1-p1)/(1-p0)).
    after = cusum.fold(CusumState(5.0, 1, 1), [(10, 3)], p0=plan.p0, p1=plan.p1)
    assert after.statistic == pytest.approx(5.0 + 3 * on_failure + 7 * on_success)


def test_cusum_resets_at_zero_and_forgets_the_calls_behind_it():
    plan = regression.design(settings=SETTINGS, baseline=DAY)
    state = cusum.fold(RESTING, [(1, 1)] * 3, p0=plan.p0, p1=plan.p1)
    assert state.statistic > 3
    # Healthy traffic takes S back to exactly zero, never below: evidence for the baseline does not bank.
    rested = cusum.fold(state, [(100, 0)] * 10, p0=plan.p0, p1=plan.p1)
    assert rested == RESTING
    again = cusum.fold(rested, [(1, 1)], p0=plan.p0, p1=plan.p1)
    assert again.statistic == pytest.approx(math.log(3)) and (again.total, again.failures) == (1, 1)
    # Bounded by the ceiling, so that the warning clears soon after the regression is over.
    capped = cusum.fold(RESTING, [(1, 1)] * 1000, p0=plan.p0, p1=plan.p1, ceiling=2 * plan.h)
    assert capped.statistic == pytest.approx(2 * plan.h)


def test_a_spotless_baseline_is_floored():
    clean = Baseline(total=86_400, failures=0, hours=24)
    plan = regression.design(settings=SETTINGS, baseline=clean)
    assert plan.p0 == SETTINGS.floor and plan.p1 == pytest.approx(3 * SETTINGS.floor)
    # Without the floor one failure would weigh ln(p1/0): here it weighs ln 3 like any other.
    state = regression.advance(settings=SETTINGS, baseline=clean, state=RESTING, buckets=[(1, 1)])
    assert state.statistic == pytest.approx(math.log(3))
    assert not regression.judge(settings=SETTINGS, baseline=clean, state=state).firing


def test_without_a_baseline_the_rule_is_inconclusive_and_never_fires():
    thin = Baseline(total=SETTINGS.min_baseline_samples - 1, failures=10, hours=24)
    assert regression.design(settings=SETTINGS, baseline=thin) is None
    state = regression.advance(
        settings=SETTINGS, baseline=thin, state=CusumState(500.0, 10, 10), buckets=[(100, 100)] * 100
    )
    assert state == RESTING
    outcome = regression.judge(settings=SETTINGS, baseline=thin, state=CusumState(500.0, 10, 10))
    assert (outcome.conclusive, outcome.firing) == (False, False)
    assert evaluate(settings=GuardSettings(), windows={}, pending={}, now=0.0, regression=outcome).action == "none"


def test_a_baseline_failing_every_call_has_nothing_worse_to_detect():
    hopeless = Baseline(total=5_000, failures=5_000, hours=24)  # p1 would be 1: ln(0/0) in the CUSUM's weights
    assert regression.design(settings=SETTINGS, baseline=hopeless) is None
    assert (
        regression.advance(settings=SETTINGS, baseline=hopeless, state=CusumState(3.0, 10, 10), buckets=[(10, 10)] * 5)
        == RESTING
    )
    outcome = regression.judge(settings=SETTINGS, baseline=hopeless, state=CusumState(3.0, 10, 10))
    assert (outcome.conclusive, outcome.firing) == (False, False)


def test_regression_warns_by_default_and_deactivates_when_configured():
    plan = regression.design(settings=SETTINGS, baseline=DAY)
    risen = CusumState(plan.h + 1, 400, 40)
    outcome = regression.judge(settings=SETTINGS, baseline=DAY, state=risen)
    verdict = evaluate(settings=GuardSettings(), windows={}, pending={}, now=0.0, regression=outcome)
    assert (verdict.state, verdict.action) == (f"Warning: {REGRESSION_RULE}", "warn")
    assert "10.0% = 40/400" in verdict.message() and "baseline 2.0%" in verdict.message()
    strict = settings_for(base=GuardSettings(), spec={"regression": {"deactivate": True, "factor": 5}})
    assert (strict.regression.factor, strict.regression.deactivate) == (5, True)
    outcome = regression.judge(settings=strict.regression, baseline=DAY, state=CusumState(100.0, 400, 40))
    verdict = evaluate(settings=strict, windows={}, pending={}, now=0.0, regression=outcome)
    assert (verdict.state, verdict.action) == (f"Firing: {REGRESSION_RULE}", "deactivate")


def test_regression_spec_is_bounded():
    assert not settings_for(base=GuardSettings(), spec={"regression": {"enabled": False}}).regression.enabled
    for bad in ({"regression": {"factor": 1.2}}, {"regression": {"factor": 50}}, {"regression": {"budget": 3}}):
        with pytest.raises(ValidationError):
            settings_for(base=GuardSettings(), spec=bad)


def test_lorden_bound():
    # 2 % -> 10 %: KL = 0.1 ln 5 + 0.9 ln(0.9/0.98).
    kl = 0.1 * math.log(5) + 0.9 * math.log(0.9 / 0.98)
    assert cusum.kl_divergence(0.1, 0.02) == pytest.approx(kl)
    assert cusum.lorden_delay(gamma=8.64e8, p1=0.1, p0=0.02) == pytest.approx(math.log(8.64e8) / kl)
    assert cusum.alternative(0.4, 3) == pytest.approx(0.7)  # at most halfway to 1
