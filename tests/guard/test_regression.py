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

# Page's single CUSUM (bank_size 1) for the tests of its arithmetic; DEFAULT, the bank, further down.
SETTINGS = RegressionSettings(bank_size=1)
DEFAULT = RegressionSettings()
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
    strict = settings_for(
        base=GuardSettings(regression=SETTINGS), spec={"regression": {"deactivate": True, "factor": 5}}
    )
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


def test_the_bank_watches_a_grid_of_ratios_for_the_budget_of_one_cusum():
    assert regression.ratios(DEFAULT) == pytest.approx((3 / 1.65, 3, 3 * 1.65, 3 * 1.65**2))
    plan = regression.design(settings=DEFAULT, baseline=DAY)
    assert plan.p1 == pytest.approx(0.06)
    assert plan.alternatives == pytest.approx(tuple(0.02 * r for r in regression.ratios(DEFAULT)))
    # K CUSUMs at h + ln K raise false alarms at most K e^-(h + ln K) = e^-h per sample: one CUSUM's budget.
    assert plan.h == pytest.approx(math.log(86_400 * 10_000) + math.log(4))
    # Ratios too close to 1 are left out (factor 1.5: 0.91 would watch for improvements), and h follows K.
    low = RegressionSettings(factor=1.5)
    assert regression.ratios(low) == pytest.approx((1.5, 1.5 * 1.65, 1.5 * 1.65**2))
    assert regression.design(settings=low, baseline=DAY).h == pytest.approx(math.log(86_400 * 10_000 * 3))


def test_the_bank_fires_when_its_highest_cusum_crosses():
    plan = regression.design(settings=DEFAULT, baseline=DAY)
    weights = [cusum.weights(plan.p0, p1) for p1 in plan.alternatives]
    # Only failures: the CUSUM for the largest ratio rises fastest, ln(8.2) a failure.
    expected = math.floor(plan.h / weights[-1][0]) + 1
    state = RESTING
    for sample in range(1, expected + 1):
        state = regression.advance(settings=DEFAULT, baseline=DAY, state=state, buckets=[(1, 1)])
        assert regression.judge(settings=DEFAULT, baseline=DAY, state=state).firing == (sample == expected), sample
    assert state.bank == pytest.approx(tuple(expected * w[0] for w in weights))
    assert state.statistic == pytest.approx(max(state.bank)) and (state.total, state.failures) == (expected, expected)
    # A bucket moves each CUSUM by its own weights; S_k never goes below zero on its own.
    after = cusum.fold_bank(
        CusumState(1.0, 5, 1, bank=(1.0, 0.0)), [(10, 1)], p0=0.02, alternatives=(0.04, 0.2), h=math.inf
    )
    low, high = cusum.weights(0.02, 0.04), cusum.weights(0.02, 0.2)
    assert after.bank == pytest.approx((1.0 + low[0] + 9 * low[1], max(0.0, high[0] + 9 * high[1])))
    assert (after.total, after.failures) == (15, 2)
    # Healthy traffic takes every CUSUM back to zero: the state is at rest, calls and alarm forgotten.
    fired = regression.advance(settings=DEFAULT, baseline=DAY, state=state, buckets=[(30, 0)])
    assert fired.alarmed and regression.judge(settings=DEFAULT, baseline=DAY, state=fired).firing
    rested = regression.advance(settings=DEFAULT, baseline=DAY, state=fired, buckets=[(100_000, 0)])
    assert rested == RESTING and not regression.judge(settings=DEFAULT, baseline=DAY, state=rested).firing
    # Each CUSUM is capped, so that the warning clears soon after a long regression is over.
    capped = regression.advance(settings=DEFAULT, baseline=DAY, state=RESTING, buckets=[(1, 1)] * 1000)
    assert max(capped.bank) == pytest.approx(regression.CEILING * plan.h)


def test_a_single_cusum_state_carries_over_into_the_bank():
    """A state saved before the bank (one S, no bank) keeps its evidence and its alarm."""
    plan = regression.design(settings=DEFAULT, baseline=DAY)
    saved = CusumState(plan.h + 1, 400, 40, alarmed=True)
    state = regression.advance(settings=DEFAULT, baseline=DAY, state=saved, buckets=[])
    assert state.bank == pytest.approx((plan.h + 1,) * 4) and state.alarmed
    assert regression.judge(settings=DEFAULT, baseline=DAY, state=state).firing
    message = regression.judge(settings=DEFAULT, baseline=DAY, state=state).describe()
    assert "tuned for 6.0%, watching 3.6% to 16.3%" in message


def test_the_bank_catches_a_2x_regression_that_the_3x_cusum_is_slow_on():
    """On the same fixed-seed 2x traces (2 % -> 4 %, buckets of 10 calls), the bank's mean delay is
    within 1.25x of Lorden's bound for 2x at this budget; Page's CUSUM tuned for 3x is not."""
    import random

    rng = random.Random(15)
    traces = [[(10, sum(rng.random() < 0.04 for _ in range(10))) for _ in range(2_000)] for _ in range(20)]

    def delay(settings: RegressionSettings, trace: list[tuple[int, int]]) -> int:
        state = RESTING
        for index, bucket in enumerate(trace):
            state = regression.advance(settings=settings, baseline=DAY, state=state, buckets=[bucket])
            if regression.judge(settings=settings, baseline=DAY, state=state).firing:
                return 10 * (index + 1)
        return 10 * len(trace)  # not caught in 20,000 calls: counted at that, not dropped

    bound = cusum.lorden_delay(gamma=86_400 * 10_000, p1=0.04, p0=0.02)
    bank = sum(delay(DEFAULT, trace) for trace in traces) / len(traces)
    page = sum(delay(SETTINGS, trace) for trace in traces) / len(traces)
    assert bank <= 1.25 * bound < page, (bank, page, bound)


def test_a_bank_saved_beside_a_zero_statistic_is_stale():
    """The reset trigger and a deactivation zero regression_cusum only: the bank beside it is dropped."""
    from selfheal.registry.guard_store import _state

    assert _state(0.0, 0, 0, False, [1.5, 2.5]) == RESTING
    assert _state(2.5, 10, 2, True, [1.5, 2.5]) == CusumState(2.5, 10, 2, True, (1.5, 2.5))
