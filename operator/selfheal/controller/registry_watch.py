"""One loop for all patches: read the registry back and act on what changed outside the operator.

- Rows written or edited by plain SQL (the runbook's INSERT/UPDATE) are validated before they
  are ever served; invalid ones are switched off.
- A row switched off in the registry (the runbook's `UPDATE … SET active = false`) shows in its
  SelfHealPatch's status as `Active=False`; the operator never turns it back on by itself.
"""

from __future__ import annotations

import asyncio
import logging

import kopf
import kubernetes
import psycopg
import psycopg_pool

from selfheal import kube
from selfheal.clock import utc_now
from selfheal.registry import store
from selfheal.status import ACTIVE, registry_status
from selfheal.models import SpecError
from selfheal.validation import validate_row

log = logging.getLogger("selfheal.registry-watch")


async def watch_registry(*, memo: kopf.Memo) -> None:
    interval = memo.config.registry_poll_seconds
    while True:
        try:
            await reflect_once(memo=memo)
        except (psycopg.OperationalError, psycopg.InterfaceError, psycopg_pool.PoolTimeout) as error:
            log.warning("registry watch: registry unreachable, will retry: %s", str(error).strip()[:200])
        except Exception:  # the loop must outlive any single bad row or API hiccup
            log.exception("registry watch: pass failed, will retry")
        await _pause(memo, interval)


async def _pause(memo: kopf.Memo, seconds: float) -> None:
    """Sleep, or less when the guard says it just changed the registry (`memo.registry_changed`)."""
    changed = getattr(memo, "registry_changed", None)
    if changed is None:
        await asyncio.sleep(seconds)
        return
    try:
        await asyncio.wait_for(changed.wait(), seconds)
    except TimeoutError:
        pass
    changed.clear()


async def reflect_once(*, memo: kopf.Memo) -> None:
    async with memo.pool.connection() as conn:
        for row in await store.pending_rows(conn):
            # Valid rows get their compiled operations; until then they are never served.
            try:
                valid, problems = validate_row(row.fields, allowed_hosts=memo.config.allowed_hosts), []
            except SpecError as error:
                valid, problems = None, error.problems
            if await store.record_validation(conn, row=row, problems=problems,
                                             operations=valid.operations if valid else None,
                                             rollback_operations=valid.rollback_operations if valid else None):
                verdict = "invalid: " + "; ".join(problems) if problems else "valid"
                log.info("registry row %s (revision %s) written outside the operator is %s", row.id, row.revision, verdict)
        rows = await store.sourced_rows(conn)
    for row in rows:
        seen = next(iter(memo.seen.get((row.namespace, row.name), ())), None)
        if seen is None or seen["generation"] != row.state.source_generation:
            continue  # not ours to reflect yet: the handler owns a generation until it is synced
        await _reflect(row, seen)


def _active_differs(status: dict, row: store.SourcedRow) -> bool:
    condition = next((c for c in status.get("conditions") or [] if c.get("type") == ACTIVE), None)
    if condition is None:
        return False  # the handler has not written status yet
    want_status = "True" if row.state.active else "False"
    want_reason = "Active" if row.state.active else (row.state.deactivation_reason or "DeactivatedInRegistry")
    return (condition.get("status"), condition.get("reason")) != (want_status, want_reason) \
        or status.get("registryVersion") != row.state.version


async def _reflect(row: store.SourcedRow, seen: dict) -> None:
    status = seen["status"]
    if not _active_differs(status, row):
        return
    new_status = registry_status(status, generation=seen["generation"], row=row.state, now=utc_now())
    try:
        if not await kube.patch_status(namespace=row.namespace, name=row.name, status=new_status,
                                       resource_version=seen["resource_version"]):
            return
    except kubernetes.client.ApiException as error:
        if error.status == 404:
            return
        raise
    seen["status"] = new_status
    state = "active" if row.state.active else f"inactive ({new_status['reason']})"
    log.info("%s/%s: registry says %s", row.namespace, row.name, state)
    await kube.post_event(
        namespace=row.namespace, name=row.name, uid=seen.get("uid"),
        type="Normal" if row.state.active else "Warning", reason=new_status["reason"],
        message=f"registry row {row.state.id} is {state}"
                + (f": {row.state.deactivation_message}" if not row.state.active and row.state.deactivation_message else ""),
    )
