"""Whose reports switch a patch off for whom (core/guard/evidence.py), with the real evaluation.

The property the guard owes to every developer who uses a patch healthily: no sequence of
reports from one other developer switches it off for them (issue 14, point 1).
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from selfheal.core.guard.evaluate import Counts, evaluate
from selfheal.core.guard.evidence import scope
from selfheal.core.guard.rules import GuardSettings

SETTINGS = GuardSettings()
WINDOWS = sorted(SETTINGS.windows())  # 5, 15, 60, 300, 600 seconds


def fired(by_developer: dict[str, Counts], settings: GuardSettings = SETTINGS):
    """The cause of a deactivation when every window holds these counts (the evaluation the operator runs)."""
    total = Counts(*(sum(getattr(c, f) for c in by_developer.values()) for f in ("total", "failures", "rollbacks")))
    verdict = evaluate(settings=settings, windows=dict.fromkeys(WINDOWS, total), pending={}, now=0.0)
    assert verdict.action == "deactivate", verdict.state
    return verdict.cause


def test_its_only_user_switches_a_patch_off_for_everyone():
    reports = {"shop": Counts(100, 60, 60)}
    judged = scope(fired(reports), SETTINGS, reports)
    assert (judged.everyone, judged.why) == (True, "its only user's reports")


def test_the_only_user_in_the_window_is_not_the_only_user_when_others_used_it_today():
    reports = {"attacker": Counts(300, 300, 300)}
    judged = scope(fired(reports), SETTINGS, reports, other_users=True)
    assert (judged.everyone, judged.developers) == (False, ("attacker",))


def test_one_developer_against_two_healthy_ones_switches_it_off_for_himself_only():
    reports = {"attacker": Counts(300, 300, 300), "shop-a": Counts(100, 2, 2), "shop-b": Counts(80, 1, 1)}
    judged = scope(fired(reports), SETTINGS, reports)
    assert (judged.everyone, judged.developers, judged.convicted) == (False, ("attacker",), ("attacker",))
    assert judged.details()["scope"] == "developers"


def test_two_developers_convicting_it_each_on_their_own_switch_it_off_for_everyone():
    reports = {"shop-a": Counts(100, 60, 60), "shop-b": Counts(100, 70, 70), "shop-c": Counts(100, 0, 0)}
    judged = scope(fired(reports), SETTINGS, reports)
    assert judged.everyone and judged.convicted == ("shop-a", "shop-b")


def test_a_developer_switched_off_earlier_counts_as_a_second_conviction():
    reports = {"shop-b": Counts(100, 70, 70), "shop-c": Counts(100, 0, 0)}
    judged = scope(fired(reports), SETTINGS, reports, switched_off=frozenset({"shop-a"}))
    assert judged.everyone and judged.convicted == ("shop-a", "shop-b")


def test_many_small_users_none_convicting_alone_still_switch_a_bad_patch_off():
    # Ten developers with 10 applications each (below the minimum samples), 8 of them rolled back.
    reports = {f"shop-{n}": Counts(10, 8, 8) for n in range(10)}
    judged = scope(fired(reports), SETTINGS, reports)
    assert judged.everyone and judged.convicted == () and "without any single one's" in judged.why


def test_no_conviction_and_no_leave_one_out_switches_nothing_off():
    reports = {"attacker": Counts(15, 15, 15), "shop": Counts(30, 3, 3)}  # attacker below the minimum samples
    judged = scope(
        fired(reports, GuardSettings(early_cutoff=False).with_rule("HighRollbackRate", for_seconds=0)),
        GuardSettings(early_cutoff=False),
        reports,
    )
    assert (judged.everyone, judged.developers) == (False, ())


def healthy_counts(max_total: int = 400):
    """A developer using the patch healthily: at most 5 % of its applications fail or roll back."""
    return st.integers(min_value=0, max_value=max_total).flatmap(
        lambda total: st.integers(min_value=0, max_value=total // 20).map(lambda bad: Counts(total, bad, bad))
    )


def any_counts():
    return st.integers(min_value=0, max_value=5_000).flatmap(
        lambda total: st.tuples(st.integers(0, total), st.integers(0, total)).map(lambda fr: Counts(total, *fr))
    )


@settings(max_examples=400, deadline=None)
@given(
    healthy=st.lists(healthy_counts(), min_size=2, max_size=5),
    attacks=st.lists(any_counts(), min_size=1, max_size=12),
    early=st.booleans(),
)
def test_no_sequence_of_one_developers_reports_switches_it_off_for_healthy_users(healthy, attacks, early):
    """Cycle after cycle, the attacker's reports in the windows are anything at all; the healthy
    developers keep their traffic; whatever the guard decides, the patch stays on for them."""
    settings_ = GuardSettings(early_cutoff=early)
    switched_off: frozenset[str] = frozenset()
    pending: dict[str, float] = {}
    for cycle, attack in enumerate(attacks):
        reports = {f"shop-{n}": counts for n, counts in enumerate(healthy)}
        reports["attacker"] = attack
        total = Counts(*(sum(getattr(c, f) for c in reports.values()) for f in ("total", "failures", "rollbacks")))
        now = cycle * 300.0  # long enough between cycles for any `for:` to elapse
        verdict = evaluate(settings=settings_, windows=dict.fromkeys(WINDOWS, total), pending=pending, now=now)
        pending = dict(verdict.pending)
        if verdict.action != "deactivate":
            continue
        judged = scope(verdict.cause, settings_, reports, switched_off=switched_off, other_users=False)
        assert not judged.everyone, (judged, reports)
        assert set(judged.developers) <= {"attacker"}
        switched_off |= set(judged.developers)
