"""What status shows of the guard: state and 24 h figures (pure logic)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from selfheal.core.guard.evaluate import Counts
from selfheal.core.status import GuardFigures

# Status lists this many developers a patch is switched off for (the audit has them all).
SHOWN_SWITCH_OFFS = 100


def guard_status(*, state: str, day: Counts, switched_off_for: list[str] | None = None) -> GuardFigures:
    """`status.guard`; percentages are None (absent) without applications, and so is the list of
    developers the patch is switched off for when there are none."""
    total = day.total
    return {
        "state": state,
        "applications24h": total,
        "successPercent": round(100.0 * (total - day.failures) / total, 1) if total else None,
        "rollbackPercent": round(100.0 * day.rollbacks / total, 1) if total else None,
        "switchedOffFor": switched_off_for[:SHOWN_SWITCH_OFFS] if switched_off_for else None,
    }


# `status.guard` is rewritten when what it shows is this far from the truth: a 24 h count off by
# 1 % or more, a percentage off by half a point or more (or a new state, or figures appearing or
# going). Exact figures every 15 s would be one status write per patch with traffic per pass, and
# a kopf event back for each; the exact values are in the metrics.
COUNT_TOLERANCE = 0.01
PERCENT_TOLERANCE = 0.5


def staleness(shown: Mapping[str, Any] | None, figures: GuardFigures) -> float:
    """How far `shown` (status.guard as it is) is from `figures`, in tolerances: 0 when not worth
    a write, inf for a new state (or any other field that differs) or figures appearing or going,
    else the largest deviation over its tolerance (>= 1). The figures pass writes the most stale first."""
    if not shown:
        return math.inf
    # The state, and whatever else status.guard shows besides the figures, exactly.
    approximate = ("applications24h", "successPercent", "rollbackPercent")
    for key in {*shown, *figures} - set(approximate):
        if shown.get(key) != figures.get(key):
            return math.inf
    worst = 0.0
    for old, new in (
        (shown.get("successPercent"), figures.get("successPercent")),
        (shown.get("rollbackPercent"), figures.get("rollbackPercent")),
    ):
        if (old is None) != (new is None):
            return math.inf
        if old is not None and new is not None:
            worst = max(worst, abs(float(old) - new) / PERCENT_TOLERANCE)
    old_total, total = int(shown.get("applications24h") or 0), int(figures.get("applications24h") or 0)
    if (old_total == 0) != (total == 0):
        return math.inf
    if total:
        worst = max(worst, abs(total - old_total) / max(total, old_total) / COUNT_TOLERANCE)
    return worst if worst >= 1 else 0.0
