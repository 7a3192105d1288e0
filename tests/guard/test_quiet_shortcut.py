"""The quiet-patch shortcut of `evaluate` gives exactly the verdict of the full evaluation."""

from __future__ import annotations

from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from selfheal.core.guard.evaluate import Counts, _quiet_state, evaluate, evaluate_fully
from selfheal.core.guard.rules import GuardSettings

WINDOWS = sorted(GuardSettings().windows())


@st.composite
def window_counts(draw) -> dict[int, Counts]:
    counts = {}
    for window in WINDOWS:
        total = draw(st.integers(0, 400))
        failures = draw(st.integers(0, total))
        counts[window] = Counts(total, failures, draw(st.integers(0, failures)))
    return counts


GUARDS = st.builds(GuardSettings, min_samples=st.integers(5, 60), early_cutoff=st.booleans())


@hypothesis_settings(max_examples=3000, deadline=None)
@given(guard=GUARDS, windows=window_counts())
def test_the_shortcut_agrees_with_the_full_evaluation(guard, windows):
    full = evaluate_fully(settings=guard, windows=windows, pending={}, now=1000.0)
    quick = _quiet_state(guard, windows)
    if quick is not None:  # when it answers, it answers the same; when not, evaluate() looks fully
        assert (quick, "none", {}) == (full.state, full.action, full.pending)
    assert evaluate(settings=guard, windows=windows, pending={}, now=1000.0).state == full.state


def test_most_healthy_traffic_takes_the_shortcut():
    guard = GuardSettings()
    healthy = {window: Counts(window, window // 20, window // 40) for window in WINDOWS}  # 1/s, 5 % failing
    assert _quiet_state(guard, healthy) == "Healthy"
    assert _quiet_state(guard, {window: Counts(3, 0, 0) for window in WINDOWS}) == "Inconclusive"
    failing = {**healthy, 60: Counts(100, 60, 60)}
    assert _quiet_state(guard, failing) is None
