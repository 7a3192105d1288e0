"""The detection bench's numpy model of the guard gives the real guard's verdicts on identical traces.

bench/detection_bench.py simulates tens of thousands of patch-days with bench/detection_model.py's
`Model`; this replays the same traces through the real guard (core.guard.evaluate, regression.advance
and regression.judge, as services/guard_cycle.py calls them, on a controlled clock) and requires
the same action and cause at every evaluation of every patch, for Page's CUSUM and for the bank.
"""

from __future__ import annotations

import numpy as np

from bench.detection_model import DEACTIVATE, WARN, Model, Traffic, replay, with_regression
from selfheal.core.guard.rules import GuardSettings, RegressionSettings

DETECTORS = {
    "page": RegressionSettings(bank_size=1),
    "bank": RegressionSettings(),
    "bank, deactivating": RegressionSettings(deactivate=True),
}


def traffic() -> Traffic:
    """Healthy patches near both thresholds, patches over them (early cut-off and `for:`), and 2x-10x
    regressions from 2-10 % baselines at traffic from one call a minute to ten a second."""
    rate, failure, rollback, factor = [], [], [], []
    for r, f, rb, k in [
        (5.0, 0.15, 0.15, 1),  # rollback near 20 %
        (8.0, 0.40, 0.05, 1),  # failure near 50 %
        (3.0, 0.40, 0.15, 1),  # both near
        (0.3, 0.19, 0.19, 1),
        (4.0, 0.30, 0.30, 1),  # over: the early cut-off
        (0.15, 0.26, 0.26, 1),  # over, little traffic: `for:` 10 min
        (0.8, 0.55, 0.0, 1),  # failing, no rollback: PatchFailing
        (2.0, 0.02, 0.02, 5),
        (0.5, 0.05, 0.0, 3),
        (0.05, 0.04, 0.04, 8),
        (6.0, 0.01, 0.01, 2),
        (1.0, 0.10, 0.05, 10),
        (0.02, 0.03, 0.03, 5),  # too little traffic for a baseline
        (2.5, 0.06, 0.06, 4),
    ]:
        rate.append(r), failure.append(f), rollback.append(rb), factor.append(k)
    n = len(rate)
    return Traffic(
        rate=np.array(rate),
        failure=np.array(failure),
        rollback=np.array(rollback),
        factor=np.array(factor, float),
        start=np.full(n, 400),
    )


def test_the_model_and_the_real_guard_give_identical_verdicts():
    steps = 1_000  # 83 minutes: across an hour boundary (a new baseline)
    model = Model(settings=GuardSettings(), detectors=DETECTORS, traffic=traffic())
    out = model.run(steps, np.random.default_rng(15), record=True)
    compared, seen = 0, {WARN: set(), DEACTIVATE: set()}
    for k, settings in enumerate(DETECTORS.values()):
        full = with_regression(GuardSettings(), settings)
        for patch in range(model.traffic.size):
            actions, causes = replay(settings=full, trace=out["trace"], history=out["history"], patch=patch)
            expected_actions = out["actions"][k, : len(actions), patch].tolist()
            expected_causes = out["causes"][k, : len(actions), patch].tolist()
            assert (actions, causes) == (expected_actions, expected_causes), (k, patch)
            compared += len(actions)
            for action, cause in zip(actions, causes, strict=True):
                if action in seen:
                    seen[action].add(cause)
    # Every path was taken: both threshold rules and the Regression rule deactivated, the Regression rule warned.
    assert seen[DEACTIVATE] == {0, 1, 3} and 3 in seen[WARN], seen
    assert compared > 30_000
