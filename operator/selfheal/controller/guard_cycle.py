"""One evaluation cycle of every patch with recent traffic: counts in, verdicts, deactivations.

Database and pure logic only (no Kubernetes), so that tests drive it on a controlled clock.
What must survive a restart or an outage (pending rules) is in the database; a cycle whose
reads or writes fail changes nothing, neither there nor here.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass

import psycopg

from selfheal.guard.evaluate import NO_DATA, Verdict, evaluate
from selfheal.guard.rules import GuardSettings
from selfheal.registry import guard_store
from selfheal.status import REASON_AUTO_DEACTIVATED

ACTOR = "operator"

SettingsLookup = Callable[[guard_store.PatchWindows], GuardSettings]


@dataclass(frozen=True)
class Decision:
    patch: guard_store.PatchWindows
    verdict: Verdict
    deactivated: guard_store.Deactivated | None = None
    new_warning: bool = False


def as_datetime(now: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(now, datetime.timezone.utc)


def details(verdict: Verdict, *, now: float) -> dict[str, object]:
    cause = verdict.cause
    assert cause is not None
    return {
        "rule": cause.rule.name, "metric": cause.rule.metric, "threshold": cause.rule.threshold,
        "window_seconds": cause.window_seconds, "for_seconds": cause.rule.for_seconds, "early": cause.early,
        "total": cause.counts.total, "failures": cause.counts.failures, "rollbacks": cause.counts.rollbacks,
        "value": round(cause.value, 6), "evaluated_at": as_datetime(now).isoformat(),
    }


class GuardCycle:
    """The loop's memory between cycles: the last verdict of each patch with recent traffic."""

    def __init__(self, *, settings_for: SettingsLookup) -> None:
        self.settings_for = settings_for
        self.verdicts: dict[str, Verdict] = {}

    async def run(self, conn: psycopg.AsyncConnection, *, now: float, windows: frozenset[int]) -> list[Decision]:
        rows = await guard_store.read_windows(conn, now=as_datetime(now), windows=windows)
        seen = {row.id for row in rows}
        # Patches whose traffic stopped are evaluated once more without data: pending rules reset.
        quiet = [guard_store.PatchWindows(id=pid, namespace=None, name=None, generation=None, pending={})
                 for pid, verdict in self.verdicts.items() if pid not in seen and verdict.pending]
        decisions, changed = [], {}
        for patch in rows + quiet:
            verdict = evaluate(settings=self.settings_for(patch), windows=patch.windows or {0: NO_DATA},
                               pending=patch.pending, now=now)
            if verdict.pending != patch.pending:
                changed[patch.id] = verdict.pending
            previous = self.verdicts.get(patch.id)
            decisions.append(Decision(patch, verdict, new_warning=verdict.action == "warn" and (
                previous is None or previous.action != "warn")))
        await guard_store.save_pending(conn, changes=changed)
        for index, decision in enumerate(decisions):
            if decision.verdict.action == "deactivate":
                done = await guard_store.deactivate(
                    conn, patch_id=decision.patch.id, reason=REASON_AUTO_DEACTIVATED, actor=ACTOR,
                    message=f"guard: {decision.verdict.message()}", details=details(decision.verdict, now=now))
                decisions[index] = Decision(decision.patch, decision.verdict, deactivated=done)
        # Adopted only once every write went through: a failed cycle leaves memory as it was.
        self.verdicts = {d.patch.id: d.verdict for d in decisions
                         if d.patch.id in seen and d.verdict.action != "deactivate"}
        return decisions
