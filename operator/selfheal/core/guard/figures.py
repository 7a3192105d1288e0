"""What status shows of the guard: state and 24 h figures (pure logic)."""

from __future__ import annotations

from selfheal.core.guard.evaluate import Counts
from selfheal.core.status import GuardFigures


def guard_status(*, state: str, day: Counts) -> GuardFigures:
    """`status.guard`; percentages are None (absent) without applications."""
    total = day.total
    return {
        "state": state,
        "applications24h": total,
        "successPercent": round(100.0 * (total - day.failures) / total, 1) if total else None,
        "rollbackPercent": round(100.0 * day.rollbacks / total, 1) if total else None,
    }
