"""One evaluation cycle of every patch with recent traffic: counts in, verdicts, deactivations.

Database and pure logic only (no Kubernetes), so that tests drive it on a controlled clock.
What must survive a restart or an outage (pending rules, the Regression rule's CUSUMs and the
watermark of the buckets folded into them) is in the database; a cycle whose reads or writes
fail changes nothing, neither there nor here.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass

import psycopg

from selfheal.core.guard import evidence, regression
from selfheal.core.guard.cusum import RESTING
from selfheal.core.guard.evaluate import NO_DATA, QUIET_VERDICTS, RuleOutcome, Verdict, evaluate
from selfheal.core.guard.regression import NO_BASELINE, Baseline
from selfheal.core.guard.rules import FINE_BUCKET_SECONDS, GuardSettings
from selfheal.core.status import REASON_AUTO_DEACTIVATED
from selfheal.registry import activation, guard_store
from selfheal.registry import evidence as evidence_rows

ACTOR = "operator"
# A 5-second bucket is folded into the CUSUMs once it ended this long ago: SDKs report in batches
# (every second) and the API buffers them, so the last seconds are still arriving.
SETTLE_SECONDS = 10
# Folding catches up at most this much per cycle (after a restart or an outage), so that one
# cycle stays short; 5-second rollups older than two hours are pruned, so that is as far back as it goes.
CATCH_UP_SECONDS = 300
FINE_RETENTION_SECONDS = 7200

SettingsLookup = Callable[[guard_store.PatchWindows], GuardSettings]


@dataclass(frozen=True)
class Decision:
    patch: guard_store.PatchWindows
    verdict: Verdict
    deactivated: activation.Deactivated | None = None
    new_warnings: tuple[RuleOutcome, ...] = ()  # warning rules firing now and not in the previous cycle
    scope: evidence.Scope | None = None  # for whom a firing deactivation rule switches the patch off
    switched_off_for: tuple[str, ...] = ()  # developers it was switched off for in this cycle, and only them

    @property
    def new_warning(self) -> bool:
        return bool(self.new_warnings)


def as_datetime(now: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(now, datetime.UTC)


def details(verdict: Verdict, *, now: float) -> dict[str, object]:
    cause = verdict.cause
    assert cause is not None
    return {
        "rule": cause.rule.name,
        "metric": cause.rule.metric,
        "threshold": cause.rule.threshold,
        "window_seconds": cause.window_seconds,
        "for_seconds": cause.rule.for_seconds,
        "early": cause.early,
        "total": cause.counts.total,
        "failures": cause.counts.failures,
        "rollbacks": cause.counts.rollbacks,
        "value": round(cause.value, 6),
        "evaluated_at": as_datetime(now).isoformat(),
        **cause.details(),
    }


def _warnings(verdict: Verdict | None) -> dict[str, RuleOutcome]:
    if verdict is None or verdict.action == "deactivate":
        return {}
    return {o.rule.name: o for o in verdict.outcomes if o.firing and o.rule.action == "warn"}


class GuardCycle:
    """The loop's memory between cycles: the last verdict of each patch with recent traffic, and
    the 24 h baselines of the Regression rule (they change once an hour)."""

    def __init__(self, *, settings_for: SettingsLookup, settle_seconds: float = SETTLE_SECONDS) -> None:
        self.settings_for = settings_for
        self.settle_seconds = settle_seconds
        self.verdicts: dict[str, Verdict] = {}
        self._baselines: dict[str, tuple[tuple[float, datetime.datetime | None], Baseline]] = {}

    async def run(
        self,
        conn: psycopg.AsyncConnection,
        *,
        now: float,
        windows: frozenset[int],
        default_settings: GuardSettings | None = None,
        custom: frozenset[tuple[str, str]] = frozenset(),
    ) -> list[Decision]:
        """Decisions of the patches evaluated in full. With `default_settings` (what `settings_for`
        answers for every patch outside `custom`, the resources with settings of their own), the
        quiet ones are judged in SQL: they are in `verdicts`, not in the decisions."""
        folded, folded_until = await self._fold(conn, now=now)
        quiet_filter = (
            None
            if default_settings is None
            else guard_store.QuietFilter(
                default_settings,
                custom=custom,
                include=frozenset(pid for pid, state in folded.items() if state != RESTING),
            )
        )
        rows, quiet_states = await guard_store.read_windows(
            conn, now=as_datetime(now), windows=windows, quiet=quiet_filter
        )
        seen = {row.id for row in rows} | quiet_states.keys()
        baselines = await self._baselines_for(conn, now=now, patches=rows)
        # Patches whose traffic stopped are evaluated once more without data: pending rules reset.
        quiet = [
            guard_store.PatchWindows(id=pid, namespace=None, name=None, generation=None, pending={})
            for pid, verdict in self.verdicts.items()
            if pid not in seen and verdict.pending
        ]
        decisions, changed = [], {}
        for patch in rows + quiet:
            settings = self.settings_for(patch)
            outcome = None
            state = folded.get(patch.id, patch.cusum)
            # At rest (S = 0, no alarm) the rule can neither fire nor warn: nothing to judge.
            if patch.id in seen and settings.regression.enabled and (state.alarmed or state.statistic > 0):
                outcome = regression.judge(
                    settings=settings.regression, baseline=baselines.get(patch.id, NO_BASELINE), state=state
                )
            verdict = evaluate(
                settings=settings,
                windows=patch.windows or {0: NO_DATA},
                pending=patch.pending,
                now=now,
                regression=outcome,
            )
            if verdict.pending != patch.pending:
                changed[patch.id] = verdict.pending
            before = _warnings(self.verdicts.get(patch.id))
            decisions.append(
                Decision(
                    patch,
                    verdict,
                    new_warnings=tuple(o for name, o in _warnings(verdict).items() if name not in before),
                )
            )
        await guard_store.save_pending(conn, changes=changed)
        if folded_until is not None:
            await guard_store.save_regression(conn, changes=folded, folded_until=folded_until)
        for index, decision in enumerate(decisions):
            if decision.verdict.action == "deactivate":
                decisions[index] = await self._switch_off(conn, decision, now=now)
        # Adopted only once every write went through: a failed cycle leaves memory as it was.
        self.verdicts = {
            d.patch.id: d.verdict
            for d in decisions
            if d.patch.id in seen and (d.verdict.action != "deactivate" or (d.scope and not d.scope.everyone))
        }
        self.verdicts.update((pid, QUIET_VERDICTS[state]) for pid, state in quiet_states.items())
        return decisions

    async def _switch_off(self, conn: psycopg.AsyncConnection, decision: Decision, *, now: float) -> Decision:
        """Switch a patch whose deactivation rule fired off for everyone, or for the developers
        whose own reports convict it (core/guard/evidence.py), with the evidence in the audit row."""
        patch, verdict = decision.patch, decision.verdict
        assert verdict.cause is not None
        by_developer = await evidence_rows.counts_by_developer(
            conn, patch_id=patch.id, since=as_datetime(now - evidence.evidence_seconds(verdict.cause))
        )
        judged = evidence.scope(
            verdict.cause,
            self.settings_for(patch),
            by_developer,
            switched_off=await evidence_rows.switched_off_for(conn, patch_id=patch.id),
            other_users=await evidence_rows.has_other_users(
                conn,
                patch_id=patch.id,
                developers=list(by_developer),
                since=as_datetime(now - evidence.USERS_LOOKBACK_SECONDS),
            ),
        )
        figures = {**details(verdict, now=now), **judged.details()}
        if judged.everyone:
            done = await activation.deactivate(
                conn,
                patch_id=patch.id,
                reason=REASON_AUTO_DEACTIVATED,
                actor=ACTOR,
                message=f"guard: {verdict.message()}; on {judged.why}",
                details=figures,
            )
            return Decision(patch, verdict, deactivated=done, scope=judged)
        switched = await evidence_rows.switch_off_for(
            conn,
            patch_id=patch.id,
            developers=judged.developers,
            rule=verdict.cause.rule.name,
            message=f"guard: {verdict.message()}",
            actor=ACTOR,
            details=figures,
        )
        return Decision(patch, verdict, scope=judged, switched_off_for=tuple(switched))

    async def _fold(self, conn: psycopg.AsyncConnection, *, now: float) -> tuple[dict, datetime.datetime | None]:
        """The CUSUMs after the 5-second buckets completed since the watermark (only those that
        changed), and the new watermark; nothing to save (None) when no new bucket completed."""
        until = (now - self.settle_seconds) // FINE_BUCKET_SECONDS * FINE_BUCKET_SECONDS
        mark = await guard_store.read_watermark(conn)
        if mark is None:  # the very first cycle: CUSUMs start from here
            return {}, as_datetime(until)
        start = max(mark.timestamp(), until - FINE_RETENTION_SECONDS)
        until = min(until, start + CATCH_UP_SECONDS)
        if until <= mark.timestamp():
            return {}, None
        batches = await guard_store.read_new_buckets(conn, start=as_datetime(start), until=as_datetime(until))
        baselines = await self._baselines_for(conn, now=now, patches=[b.patch for b in batches])
        folded = {}
        for batch in batches:
            patch = batch.patch
            state = regression.advance(
                settings=self.settings_for(patch).regression,
                baseline=baselines.get(patch.id, NO_BASELINE),
                state=batch.patch.cusum,
                buckets=batch.buckets,
            )
            if state != batch.patch.cusum:
                folded[patch.id] = state
        return folded, as_datetime(until)

    async def _baselines_for(
        self, conn: psycopg.AsyncConnection, *, now: float, patches: list[guard_store.PatchWindows]
    ) -> dict[str, Baseline]:
        """24 h baselines, read once an hour per patch (and again when it came back: `since`)."""
        hour = now // 3600 * 3600
        if any(key[0] != hour for key, _ in self._baselines.values()):  # a new hour: forget the last one's
            self._baselines = {pid: entry for pid, entry in self._baselines.items() if entry[0][0] == hour}
        missing = [p.id for p in patches if self._baselines.get(p.id, ((None, None), None))[0] != (hour, p.since)]
        if missing:
            read = await guard_store.read_baselines(conn, now=as_datetime(now), ids=missing)
            since = {p.id: p.since for p in patches}
            for patch_id in missing:
                self._baselines[patch_id] = ((hour, since[patch_id]), read.get(patch_id, NO_BASELINE))
        return {p.id: self._baselines[p.id][1] for p in patches}
