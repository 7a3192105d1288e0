"""The guard: one asyncio task for all patches inside `selfheal operator` (no timer per object).

Every few seconds: apply kill-switch and reactivation annotations, run one evaluation cycle
(services/guard_cycle.py), then tell people about what it decided. Status `Active=False`
and its Warning event come through the registry watch, which mirrors `deactivation_reason`
(woken at once here); this loop adds metrics, the webhook and `status.guard` figures.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Any

import kubernetes

from selfheal.controller import metrics as guard_metrics
from selfheal.controller import status_writes
from selfheal.controller.config import GuardConfig
from selfheal.controller.guard_notify import notify
from selfheal.controller.state import OperatorState
from selfheal.controller.views import Key, PatchView, active_condition
from selfheal.core.clock import utc_now
from selfheal.core.guard.evaluate import DEACTIVATED, INCONCLUSIVE, NO_DATA
from selfheal.core.guard.figures import guard_status, staleness
from selfheal.core.guard.rules import REGRESSION_RULE, VOLUME_RULE, GuardSettings
from selfheal.core.guard.spec import settings_for
from selfheal.core.status import (
    REASON_MANUAL_KILL_SWITCH,
    Condition,
    GuardFigures,
    PatchStatus,
    set_condition,
)
from selfheal.registry import activation, guard_store
from selfheal.registry import evidence as evidence_rows
from selfheal.registry.errors import REGISTRY_UNREACHABLE, first_line
from selfheal.services import kill_switch, kube
from selfheal.services.guard_cycle import ACTOR, Decision, GuardCycle, as_datetime

VOLUME_CONDITION = "HighVolume"
REGRESSION_CONDITION = "Regression"
# Conditions of the rules that warn: type, rule, message once the warning is over. While warned,
# the message is the rule's figures (the volume rule's stays the fixed text it always was).
WARNING_CONDITIONS = (
    (VOLUME_CONDITION, VOLUME_RULE, "volume back under the threshold"),
    (REGRESSION_CONDITION, REGRESSION_RULE, "failure rate back near its own baseline"),
)
WARNED_MESSAGES = {VOLUME_RULE: "above the volume threshold for its duration"}
MAINTENANCE_SECONDS = 3600.0
# The figures pass writes status this long at most, with this many writes in flight (the API
# server takes them in parallel; one after another, 10,000 of them took minutes).
FIGURES_WRITE_SECONDS = 1.5
FIGURES_WRITERS = 8

log = logging.getLogger("selfheal.guard")


def start(*, state: OperatorState) -> asyncio.Task:
    """Called once from the startup handler; the task is cancelled at cleanup."""
    guard_metrics.serve(port=state.config.guard.metrics_port)
    return asyncio.create_task(GuardLoop(state=state).run(), name="selfheal-guard")


class GuardLoop:
    def __init__(self, *, state: OperatorState) -> None:
        self.state = state
        self.config: GuardConfig = state.config.guard
        self.cycle = GuardCycle(settings_for=self._settings_for)
        self.tokens: dict[str, str] | None = None  # reactivation tokens already acted on
        self.next_figures = 0.0
        self.next_maintenance = 0.0
        self.figures_deferred = 0  # status writes the last figures pass left for the next one
        self.day_figures = guard_store.DayFigures()
        self._settings_cache: dict[str, GuardSettings] = {}

    def _settings(self, view: PatchView | None) -> GuardSettings:
        spec = view["guard"] if view else None
        if not spec:
            return self.config.settings
        key = repr(sorted(spec.items()))
        if key not in self._settings_cache:
            try:
                self._settings_cache[key] = settings_for(base=self.config.settings, spec=spec)
            except ValueError:  # the operator's reconcile reports a bad spec; judge with defaults meanwhile
                self._settings_cache[key] = self.config.settings
        return self._settings_cache[key]

    def _settings_for(self, patch: guard_store.PatchWindows) -> GuardSettings:
        if patch.namespace is None or patch.name is None:
            return self.config.settings
        return self._settings(self.state.views.get((patch.namespace, patch.name)))

    def _windows_and_custom(self) -> tuple[frozenset[int], frozenset[tuple[str, str]]]:
        """Every window some patch's settings need, and the resources with settings of their own."""
        windows, custom = set(self.config.settings.windows()), set()
        for key, view in self.state.views.items():
            if view["guard"]:
                windows |= self._settings(view).windows()
                custom.add(key)
        return frozenset(windows), frozenset(custom)

    async def run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.once(now=time.time())
                guard_metrics.registry_up.set(1)
            except REGISTRY_UNREACHABLE as error:
                guard_metrics.registry_up.set(0)
                guard_metrics.cycle_errors.labels(kind="registry").inc()
                log.warning("guard: registry unreachable, no verdict this cycle: %s", first_line(error)[:200])
            except Exception:  # the guard must outlive any single bad object or API hiccup
                guard_metrics.cycle_errors.labels(kind="other").inc()
                log.exception("guard: cycle failed, will retry")
            await asyncio.sleep(max(0.0, self.config.interval_seconds - (time.monotonic() - started)))

    async def once(self, *, now: float) -> None:
        pool = self.state.pool
        started = time.perf_counter()
        async with pool.connection() as conn:
            if now >= self.next_maintenance:
                created, dropped = await guard_store.maintain(
                    conn,
                    now=as_datetime(now),
                    days_ahead=self.config.partitions_ahead_days,
                    retention_days=self.config.retention_days,
                )
                self.next_maintenance = now + MAINTENANCE_SECONDS
                if created or dropped:
                    log.info("guard: %d application partitions created, %d dropped", created, dropped)
            changed = await self._annotations(conn)
        async with pool.connection() as conn:
            windows, custom = self._windows_and_custom()
            decisions = await self.cycle.run(
                conn, now=now, windows=windows, default_settings=self.config.settings, custom=custom
            )
        guard_metrics.cycle_seconds.observe(time.perf_counter() - started)
        for decision in decisions:
            changed |= await self._tell(decision)
        if changed:
            self.state.registry_changed.set()  # the registry watch mirrors it into status now
        if changed or now >= self.next_figures:
            # After a change, once more next cycle: the registry watch will have mirrored it by then.
            self.next_figures = now if changed else now + self.config.figures_interval_seconds
            await self._figures(now=now)

    async def _annotations(self, conn: Any) -> bool:
        """Kill switch and reactivation annotations, acted on in the registry (idempotent)."""
        if self.tokens is None:
            self.tokens = await activation.reactivation_tokens(conn)
        changed = False
        for (namespace, name), view in self.state.views.items():
            if view["disable"] is None and view["reactivate"] is None:
                continue
            patch_id = view["status"].get("registryId") or await activation.patch_id_for(
                conn, namespace=namespace, name=name
            )
            if patch_id is None:
                continue
            if view["disable"] is not None:
                changed |= await self._disable(conn, namespace, name, view, patch_id=patch_id)
            elif view["reactivate"] != self.tokens.get(patch_id):
                back = await kill_switch.switch_on(conn, patch_id=patch_id, actor=ACTOR, token=view["reactivate"])
                self.tokens[patch_id] = view["reactivate"] or ""
                if back:
                    changed = True
                    log.info("%s/%s: reactivated by annotation", namespace, name)
        return changed

    async def _disable(self, conn: Any, namespace: str, name: str, view: PatchView, *, patch_id: str) -> bool:
        condition = active_condition(view)
        if condition is not None and condition.get("status") == "False":
            return False
        if not await kill_switch.still_disabled(namespace, name):
            return False
        reason = view["disable"] or "no reason given"
        if not await kill_switch.switch_off(conn, patch_id=patch_id, actor=ACTOR, reason=reason, via="annotation"):
            return False
        guard_metrics.deactivations.labels(reason=REASON_MANUAL_KILL_SWITCH, rule="").inc()
        log.warning("%s/%s: kill switch: %s", namespace, name, reason)
        await notify(
            url=self.config.webhook_url,
            details={"patch": f"{namespace}/{name}", "reason": REASON_MANUAL_KILL_SWITCH},
            text=f":octagonal_sign: SelfHealPatch {namespace}/{name} switched off: {reason}",
        )
        return True

    async def _tell(self, decision: Decision) -> bool:
        patch, verdict = decision.patch, decision.verdict
        where = f"{patch.namespace}/{patch.name}" if patch.namespace else f"registry row {patch.id}"
        figures = {"patch": where, "patch_id": patch.id, "state": verdict.state, "message": verdict.message()}
        if decision.deactivated is not None:
            assert verdict.cause is not None
            guard_metrics.deactivations.labels(reason="AutoDeactivated", rule=verdict.cause.rule.name).inc()
            log.warning("%s: deactivated by the guard: %s", where, verdict.message())
            await notify(
                url=self.config.webhook_url,
                details=figures,
                text=f":rotating_light: {where} deactivated by the guard: {verdict.message()}",
            )
            return True
        if decision.switched_off_for:
            assert verdict.cause is not None and decision.scope is not None
            guard_metrics.deactivations.labels(reason="SwitchedOffForDevelopers", rule=verdict.cause.rule.name).inc()
            who = ", ".join(decision.switched_off_for)
            message = f"switched off for developer {who} only ({decision.scope.why}): {verdict.message()}"
            log.warning("%s: %s", where, message)
            await self._announce(
                patch, figures, message=message, text=f":no_entry: {where} {message}", reason="SwitchedOffForDevelopers"
            )
            return True
        for warning in decision.new_warnings:
            message = warning.describe()
            guard_metrics.warnings.labels(rule=warning.rule.name).inc()
            log.warning("%s: guard warning: %s", where, message)
            await self._announce(
                patch, figures, message=message, text=f":warning: {where}: {message}", reason=warning.rule.name
            )
        return False

    async def _announce(
        self, patch: guard_store.PatchWindows, figures: dict, *, message: str, text: str, reason: str
    ) -> None:
        """The webhook notification, and a Warning event on the resource when there is one."""
        await notify(url=self.config.webhook_url, details={**figures, "message": message}, text=text)
        view = self.state.views.get((patch.namespace, patch.name)) if patch.namespace and patch.name else None
        if view is not None and patch.namespace and patch.name:
            await self._event(patch.namespace, patch.name, view, reason=reason, message=message)

    async def _event(self, namespace: str, name: str, view: PatchView, *, reason: str, message: str) -> None:
        try:
            await kube.post_event(
                namespace=namespace, name=name, uid=view["uid"], type="Warning", reason=reason, message=message
            )
        except kubernetes.client.ApiException as error:
            log.warning("%s/%s: could not post event: %s", namespace, name, error.reason)

    async def _figures(self, *, now: float) -> None:
        """`status.guard` and the per-patch metrics. Status is written where it is stale
        (core/guard/figures.py: a new state, a count off by 1 %, a percentage by half a point) or a
        warning condition changed, those first, the most stale next, a few at a time, and only
        for FIGURES_WRITE_SECONDS: what is left waits for the next pass (an hour's turn moves
        every patch's 24 h count at once)."""
        started = time.monotonic()
        async with self.state.pool.connection() as conn:
            day = await self.day_figures.read(conn, now=as_datetime(now))
            switch_offs = await evidence_rows.all_switch_offs(conn)
        writes: list[tuple[float, Key, GuardFigures | None, list[Condition] | None, str | None]] = []
        for key, view in self.state.views.items():
            patch_id = view["status"].get("registryId")
            if not patch_id:
                continue
            state = self._state(patch_id, view)
            counts = day.get(patch_id, NO_DATA)
            guard = guard_status(state=state, day=counts, switched_off_for=switch_offs.get(patch_id))
            guard_metrics.record_patch(
                namespace=key[0],
                name=key[1],
                patch_id=patch_id,
                guard_state=state,
                total=counts.total,
                success=(counts.total - counts.failures) / counts.total if counts.total else None,
                rollback=counts.rollbacks / counts.total if counts.total else None,
            )
            status = view["status"]
            stale = staleness(status.get("guard"), guard)
            conditions = self._warning_conditions(
                status, patch_id=patch_id, state=state, generation=view["generation"] or 0
            )
            if stale or conditions is not None:
                urgency = math.inf if conditions is not None else stale
                writes.append((urgency, key, guard if stale else None, conditions, view["resource_version"]))
        writes.sort(key=lambda write: write[0], reverse=True)
        queue = iter(writes)
        deadline = started + FIGURES_WRITE_SECONDS
        self.figures_deferred = 0

        async def writer() -> None:
            for _, key, guard, conditions, resource_version in queue:
                if time.monotonic() >= deadline:
                    self.figures_deferred += 1
                    continue
                await status_writes.guard_figures(
                    key, guard=guard, conditions=conditions, resource_version=resource_version
                )

        await asyncio.gather(*(writer() for _ in range(FIGURES_WRITERS)))
        if self.figures_deferred:
            log.info("guard: %d status figures left for the next pass", self.figures_deferred)

    def _state(self, patch_id: str, view: PatchView) -> str:
        condition = active_condition(view)
        if condition is not None and condition.get("status") == "False":
            return DEACTIVATED
        verdict = self.cycle.verdicts.get(patch_id)
        return verdict.state if verdict else INCONCLUSIVE

    def _warning_conditions(
        self, status: PatchStatus, *, patch_id: str, state: str, generation: int
    ) -> list[Condition] | None:
        """The HighVolume and Regression conditions where they change; None when nothing to write."""
        conditions = list(status.get("conditions") or [])
        verdict = self.cycle.verdicts.get(patch_id) if state != DEACTIVATED else None
        firing = (
            {o.rule.name: o for o in verdict.outcomes if o.firing and o.rule.action == "warn"}
            if verdict is not None and verdict.action != "deactivate"
            else {}
        )
        changed = False
        for condition_type, rule, off in WARNING_CONDITIONS:
            current = next((c for c in conditions if c.get("type") == condition_type), None)
            warned = rule in firing
            if current is None and not warned or current is not None and (current["status"] == "True") == warned:
                continue
            message = (WARNED_MESSAGES.get(rule) or firing[rule].describe()) if warned else off
            conditions = set_condition(
                conditions,
                type=condition_type,
                status=warned,
                reason=rule,
                message=message,
                generation=generation,
                now=utc_now(),
            )
            changed = True
        return conditions if changed else None
