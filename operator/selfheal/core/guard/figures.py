"""What status shows of the guard: state and 24 h figures (pure logic)."""

from __future__ import annotations

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
