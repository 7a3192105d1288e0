"""The guard: one asyncio task for all patches inside `selfheal operator` (no timer per object).

Every few seconds: apply kill-switch and reactivation annotations, run one evaluation cycle
(controller/guard_cycle.py), then tell people about what it decided. Status `Active=False`
and its Warning event come through the registry watch, which mirrors `deactivation_reason`
(woken at once here); this loop adds metrics, the webhook and `status.guard` figures.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import kopf
import kubernetes
import psycopg
import psycopg_pool

from selfheal import GROUP, PLURAL, VERSION, kube
from selfheal.controller import guard_metrics
from selfheal.controller.config import GuardConfig
from selfheal.controller.guard_cycle import ACTOR, Decision, GuardCycle, as_datetime
from selfheal.controller.guard_notify import notify
from selfheal.guard.evaluate import DEACTIVATED, INCONCLUSIVE, NO_DATA
from selfheal.guard.figures import guard_status
from selfheal.guard.rules import REGRESSION_RULE, VOLUME_RULE, GuardSettings
from selfheal.guard.spec import settings_for
from selfheal.registry import guard_store
from selfheal.status import ACTIVE, REASON_MANUAL_KILL_SWITCH, set_condition

ANNOTATION_DISABLE = f"{GROUP}/disable"  # value: the reason; the patch stays off while it is there
ANNOTATION_REACTIVATE = f"{GROUP}/reactivate"  # value: a new token each time brings the patch back once
VOLUME_CONDITION = "HighVolume"
REGRESSION_CONDITION = "Regression"
# Conditions of the rules that warn: type, rule, message once the warning is over. While warned,
# the message is the rule's figures (the volume rule's stays the fixed text it always was).
WARNING_CONDITIONS = (
    (VOLUME_CONDITION, VOLUME_RULE, "volume back under the threshold"),
    (REGRESSION_CONDITION, REGRESSION_RULE, "failure rate back near its own baseline"),
)
WARNED_MESSAGES = {VOLUME_RULE: "above the volume threshold for its duration"}
DB_ERRORS = (psycopg.OperationalError, psycopg.InterfaceError, psycopg_pool.PoolTimeout)
MAINTENANCE_SECONDS = 3600.0

log = logging.getLogger("selfheal.guard")


@kopf.index(GROUP, VERSION, PLURAL)
def guard_seen(namespace: str, name: str, spec: kopf.Spec, meta: kopf.Meta, status: kopf.Status,
               **_: Any) -> dict:
    annotations = meta.get("annotations") or {}
    return {(namespace, name): {
        "uid": meta.get("uid"), "generation": meta.get("generation"), "guard": spec.get("guard"),
        "disable": annotations.get(ANNOTATION_DISABLE), "reactivate": annotations.get(ANNOTATION_REACTIVATE),
        "status": dict(status), "resource_version": meta.get("resourceVersion"),
    }}


def start(*, memo: kopf.Memo, index: kopf.Index) -> asyncio.Task:
    """Called once from the startup handler; the task is cancelled by `stop` below."""
    memo.registry_changed = asyncio.Event()
    guard_metrics.serve(port=memo.config.guard.metrics_port)
    return asyncio.create_task(GuardLoop(memo=memo, index=index).run(), name="selfheal-guard")


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    task = getattr(memo, "guard", None)
    if task is not None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _entry(index: kopf.Index, key: tuple[str, str]) -> dict | None:
    return next(iter(index.get(key, ())), None)


def _active_condition(entry: dict) -> dict | None:
    return next((c for c in entry["status"].get("conditions") or [] if c.get("type") == ACTIVE), None)


class GuardLoop:
    def __init__(self, *, memo: kopf.Memo, index: kopf.Index) -> None:
        self.memo, self.index = memo, index
        self.config: GuardConfig = memo.config.guard
        self.cycle = GuardCycle(settings_for=self._settings_for)
        self.tokens: dict[str, str] | None = None  # reactivation tokens already acted on
        self.next_figures = 0.0
        self.next_maintenance = 0.0
        self._settings_cache: dict[tuple, GuardSettings] = {}

    def _settings(self, entry: dict | None) -> GuardSettings:
        spec = entry.get("guard") if entry else None
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
        if patch.namespace is None:
            return self.config.settings
        return self._settings(_entry(self.index, (patch.namespace, patch.name)))

    def _windows_and_custom(self) -> tuple[frozenset[int], frozenset[tuple[str, str]]]:
        """Every window some patch's settings need, and the resources with settings of their own."""
        windows, custom = set(self.config.settings.windows()), set()
        for key, store in self.index.items():
            for entry in store:
                if entry.get("guard"):
                    windows |= self._settings(entry).windows()
                    custom.add(key)
        return frozenset(windows), frozenset(custom)

    async def run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.once(now=time.time())
                guard_metrics.registry_up.set(1)
            except DB_ERRORS as error:
                guard_metrics.registry_up.set(0)
                guard_metrics.cycle_errors.labels(kind="registry").inc()
                log.warning("guard: registry unreachable, no verdict this cycle: %s", str(error).strip()[:200])
            except Exception:  # the guard must outlive any single bad object or API hiccup
                guard_metrics.cycle_errors.labels(kind="other").inc()
                log.exception("guard: cycle failed, will retry")
            await asyncio.sleep(max(0.0, self.config.interval_seconds - (time.monotonic() - started)))

    async def once(self, *, now: float) -> None:
        pool = self.memo.pool
        started = time.perf_counter()
        async with pool.connection() as conn:
            if now >= self.next_maintenance:
                created, dropped = await guard_store.maintain(
                    conn, now=as_datetime(now), days_ahead=self.config.partitions_ahead_days,
                    retention_days=self.config.retention_days)
                self.next_maintenance = now + MAINTENANCE_SECONDS
                if created or dropped:
                    log.info("guard: %d application partitions created, %d dropped", created, dropped)
            changed = await self._annotations(conn)
        async with pool.connection() as conn:
            windows, custom = self._windows_and_custom()
            decisions = await self.cycle.run(conn, now=now, windows=windows, default_settings=self.config.settings,
                                             custom=custom)
        guard_metrics.cycle_seconds.observe(time.perf_counter() - started)
        for decision in decisions:
            changed |= await self._tell(decision)
        if changed:
            self.memo.registry_changed.set()  # the registry watch mirrors it into status now
        if changed or now >= self.next_figures:
            # After a change, once more next cycle: the registry watch will have mirrored it by then.
            self.next_figures = now if changed else now + self.config.figures_interval_seconds
            await self._figures(now=now)

    async def _annotations(self, conn) -> bool:
        """Kill switch and reactivation annotations, acted on in the registry (idempotent)."""
        if self.tokens is None:
            self.tokens = await guard_store.reactivation_tokens(conn)
        changed = False
        for (namespace, name), store in list(self.index.items()):
            entry = next(iter(store), None)
            if entry is None or (entry["disable"] is None and entry["reactivate"] is None):
                continue
            patch_id = entry["status"].get("registryId") or await guard_store.patch_id_for(
                conn, namespace=namespace, name=name)
            if patch_id is None:
                continue
            condition = _active_condition(entry)
            if entry["disable"] is not None:
                if (condition is None or condition.get("status") != "False") \
                        and await _still_disabled(namespace, name):
                    reason = entry["disable"] or "no reason given"
                    done = await guard_store.deactivate(
                        conn, patch_id=patch_id, reason=REASON_MANUAL_KILL_SWITCH, actor=ACTOR,
                        message=f"kill switch (annotation): {reason}", details={"annotation": ANNOTATION_DISABLE,
                                                                               "reason": reason})
                    if done:
                        changed = True
                        guard_metrics.deactivations.labels(reason=REASON_MANUAL_KILL_SWITCH, rule="").inc()
                        log.warning("%s/%s: kill switch: %s", namespace, name, reason)
                        await notify(url=self.config.webhook_url, details={"patch": f"{namespace}/{name}",
                                     "reason": REASON_MANUAL_KILL_SWITCH},
                                     text=f":octagonal_sign: SelfHealPatch {namespace}/{name} switched off: {reason}")
            elif entry["reactivate"] != self.tokens.get(patch_id):
                back = await guard_store.reactivate(conn, patch_id=patch_id, actor=ACTOR, token=entry["reactivate"])
                self.tokens[patch_id] = entry["reactivate"]
                if back:
                    changed = True
                    log.info("%s/%s: reactivated by annotation", namespace, name)
        return changed

    async def _tell(self, decision: Decision) -> bool:
        patch, verdict = decision.patch, decision.verdict
        where = f"{patch.namespace}/{patch.name}" if patch.namespace else f"registry row {patch.id}"
        figures = {"patch": where, "patch_id": patch.id, "state": verdict.state, "message": verdict.message()}
        if decision.deactivated is not None:
            guard_metrics.deactivations.labels(reason="AutoDeactivated", rule=verdict.cause.rule.name).inc()
            log.warning("%s: deactivated by the guard: %s", where, verdict.message())
            await notify(url=self.config.webhook_url, details=figures,
                         text=f":rotating_light: {where} deactivated by the guard: {verdict.message()}")
            return True
        for warning in decision.new_warnings:
            message = warning.describe()
            guard_metrics.warnings.labels(rule=warning.rule.name).inc()
            log.warning("%s: guard warning: %s", where, message)
            await notify(url=self.config.webhook_url, details={**figures, "message": message},
                         text=f":warning: {where}: {message}")
            entry = _entry(self.index, (patch.namespace, patch.name)) if patch.namespace else None
            if entry is not None:
                await self._event(patch.namespace, patch.name, entry, reason=warning.rule.name, message=message)
        return False

    async def _event(self, namespace: str, name: str, entry: dict, *, reason: str, message: str) -> None:
        try:
            await kube.post_event(namespace=namespace, name=name, uid=entry.get("uid"), type="Warning",
                                  reason=reason, message=message)
        except kubernetes.client.ApiException as error:
            log.warning("%s/%s: could not post event: %s", namespace, name, error.reason)

    async def _figures(self, *, now: float) -> None:
        """`status.guard` and the per-patch metrics, written only where they changed."""
        async with self.memo.pool.connection() as conn:
            day = await guard_store.figures_24h(conn, now=as_datetime(now))
        for (namespace, name), store in list(self.index.items()):
            entry = next(iter(store), None)
            patch_id = entry and entry["status"].get("registryId")
            if not patch_id:
                continue
            state = self._state(patch_id, entry)
            counts = day.get(patch_id, NO_DATA)
            guard = guard_status(state=state, day=counts)
            guard_metrics.record_patch(
                namespace=namespace, name=name, patch_id=patch_id, guard_state=state, total=counts.total,
                success=(counts.total - counts.failures) / counts.total if counts.total else None,
                rollback=counts.rollbacks / counts.total if counts.total else None)
            status = entry["status"]
            patch: dict[str, Any] = {}
            if status.get("guard") != {k: v for k, v in guard.items() if v is not None}:
                patch["guard"] = guard
            conditions = self._warning_conditions(status, patch_id=patch_id, state=state,
                                                  generation=entry["generation"])
            if conditions is not None:
                patch["conditions"] = conditions
            if patch:
                try:
                    # Conditions come from the cached view: only write them over that very version.
                    await kube.patch_status(namespace=namespace, name=name, status=patch,
                                            resource_version=entry["resource_version"] if conditions else None)
                except kubernetes.client.ApiException as error:
                    if error.status != 404:
                        log.warning("%s/%s: could not write guard status: %s", namespace, name, error.reason)

    def _state(self, patch_id: str, entry: dict) -> str:
        condition = _active_condition(entry)
        if condition is not None and condition.get("status") == "False":
            return DEACTIVATED
        verdict = self.cycle.verdicts.get(patch_id)
        return verdict.state if verdict else INCONCLUSIVE

    def _warning_conditions(self, status: dict, *, patch_id: str, state: str, generation: int) -> list | None:
        """The HighVolume and Regression conditions where they change; None when nothing to write."""
        conditions = list(status.get("conditions") or [])
        verdict = self.cycle.verdicts.get(patch_id) if state != DEACTIVATED else None
        firing = {o.rule.name: o for o in verdict.outcomes if o.firing and o.rule.action == "warn"} \
            if verdict is not None and verdict.action != "deactivate" else {}
        changed = False
        for condition_type, rule, off in WARNING_CONDITIONS:
            current = next((c for c in conditions if c.get("type") == condition_type), None)
            warned = rule in firing
            if current is None and not warned or current is not None and (current["status"] == "True") == warned:
                continue
            message = (WARNED_MESSAGES.get(rule) or firing[rule].describe()) if warned else off
            conditions = set_condition(conditions, type=condition_type, status=warned, reason=rule, message=message,
                                       generation=generation or 0,
                                       now=as_datetime(time.time()).strftime("%Y-%m-%dT%H:%M:%SZ"))
            changed = True
        return conditions if changed else None


async def _still_disabled(namespace: str, name: str) -> bool:
    """Ask the API server, not the index: a view that lags behind `selfheal enable` (annotation
    removed, registry row already back on) must not switch the patch off again."""
    try:
        body = await asyncio.to_thread(kube.custom_objects().get_namespaced_custom_object,
                                       GROUP, VERSION, namespace, PLURAL, name)
    except kubernetes.client.ApiException as error:
        if error.status == 404:
            return False
        raise
    return ANNOTATION_DISABLE in ((body.get("metadata") or {}).get("annotations") or {})
