"""One loop for all patches: read the registry back and act on what changed outside the operator.

- Rows written or edited by plain SQL (the runbook's INSERT/UPDATE) are validated before they
  are ever served; invalid ones are switched off (services/sync.py).
- A row switched off in the registry (the runbook's `UPDATE … SET active = false`) shows in its
  SelfHealPatch's status as `Active=False`; the operator never turns it back on by itself.
"""

from __future__ import annotations

import asyncio
import logging

from selfheal.controller import status_writes
from selfheal.controller.state import OperatorState
from selfheal.controller.views import PatchView, active_condition
from selfheal.registry import store
from selfheal.registry.errors import REGISTRY_UNREACHABLE, first_line
from selfheal.services import kube, sync

log = logging.getLogger("selfheal.registry-watch")


async def watch_registry(*, state: OperatorState) -> None:
    while True:
        try:
            await reflect_once(state=state)
        except REGISTRY_UNREACHABLE as error:
            log.warning("registry watch: registry unreachable, will retry: %s", first_line(error)[:200])
        except Exception:  # the loop must outlive any single bad row or API hiccup
            log.exception("registry watch: pass failed, will retry")
        await _pause(state, state.config.registry_poll_seconds)


async def _pause(state: OperatorState, seconds: float) -> None:
    """Sleep, or less when the guard says it just changed the registry."""
    try:
        await asyncio.wait_for(state.registry_changed.wait(), seconds)
    except TimeoutError:
        pass
    state.registry_changed.clear()


async def reflect_once(*, state: OperatorState) -> None:
    async with state.pool.connection() as conn:
        await sync.validate_rows_written_outside(conn, allowed_hosts=state.config.allowed_hosts)
        rows = await store.sourced_rows(conn)
    for row in rows:
        view = state.views.get((row.namespace, row.name))
        if view is None or view["generation"] != row.state.source_generation:
            continue  # not ours to reflect yet: the handler owns a generation until it is synced
        await _reflect(state, row, view)


def _active_differs(view: PatchView, row: store.SourcedRow) -> bool:
    condition = active_condition(view)
    if condition is None:
        return False  # the handler has not written status yet
    want_status = "True" if row.state.active else "False"
    want_reason = "Active" if row.state.active else (row.state.deactivation_reason or "DeactivatedInRegistry")
    return (condition.get("status"), condition.get("reason")) != (want_status, want_reason) or view["status"].get(
        "registryVersion"
    ) != row.state.version


async def _reflect(state: OperatorState, row: store.SourcedRow, view: PatchView) -> None:
    if not _active_differs(view, row):
        return
    key = (row.namespace, row.name)
    new_status = await status_writes.mirror_registry(
        state.views,
        key,
        previous=view["status"],
        generation=view["generation"] or 0,
        row=row.state,
        resource_version=view["resource_version"],
    )
    if new_status is None:
        return
    described = "active" if row.state.active else f"inactive ({new_status['reason']})"
    log.info("%s/%s: registry says %s", row.namespace, row.name, described)
    detail = row.state.deactivation_message if not row.state.active else None
    await kube.post_event(
        namespace=row.namespace,
        name=row.name,
        uid=view["uid"],
        type="Normal" if row.state.active else "Warning",
        reason=new_status["reason"],
        message=f"registry row {row.state.id} is {described}" + (f": {detail}" if detail else ""),
    )
