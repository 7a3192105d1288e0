"""The one writer of SelfHealPatch status.

Handlers write through kopf's `patch` (applied when the handler returns); the registry watch
and the guard loop, which run outside handlers, write through the API server's status
subresource. Every status comes from `core.status` and goes out through here, so the rules
(never `spec`, conditions only over the version they were computed from) hold in one place.
"""

from __future__ import annotations

import logging

import kopf
import kubernetes

from selfheal.controller.views import Key, PatchViews
from selfheal.core.clock import utc_now
from selfheal.core.guard.evaluate import DEACTIVATED, INCONCLUSIVE, NO_DATA
from selfheal.core.guard.figures import guard_status
from selfheal.core.status import (
    GuardFigures,
    PatchStatus,
    RegistryState,
    invalid_status,
    registry_status,
    synced_status,
    unavailable_status,
)
from selfheal.services import kube

log = logging.getLogger("selfheal.operator")


# --- from handlers: through kopf's patch ---------------------------------------------------------


def invalid(patch: kopf.Patch, previous: PatchStatus, *, generation: int, problems: list[str]) -> None:
    patch.status.update(invalid_status(previous, generation=generation, problems=problems, now=utc_now()))
    patch.status["operations"] = None


def synced(
    patch: kopf.Patch, previous: PatchStatus, *, generation: int, row: RegistryState, operations: dict[str, int]
) -> None:
    patch.status.update(synced_status(previous, generation=generation, row=row, now=utc_now()))
    patch.status["operations"] = operations
    if "guard" not in previous:
        # The guard's first figures for a patch it has not judged yet, in this same write: else its
        # figures pass writes them, one more status patch per object (10,000 over a backlog).
        state = INCONCLUSIVE if row.active else DEACTIVATED
        figures = guard_status(state=state, day=NO_DATA)
        patch.status["guard"] = {key: value for key, value in figures.items() if value is not None}


def unavailable(patch: kopf.Patch, previous: PatchStatus, *, generation: int, error: str) -> None:
    patch.status.update(unavailable_status(previous, generation=generation, error=error, now=utc_now()))


# --- from the loops: through the API server ------------------------------------------------------


async def mirror_registry(
    views: PatchViews,
    key: Key,
    *,
    previous: PatchStatus,
    generation: int,
    row: RegistryState,
    resource_version: str | None,
) -> PatchStatus | None:
    """Active as the registry says; None when the view was stale or the object is gone."""
    status = registry_status(previous, generation=generation, row=row, now=utc_now())
    if not await _write(key, status, resource_version=resource_version):
        return None
    views.remember_status(key, status)
    return status


async def guard_figures(
    key: Key, *, guard: GuardFigures | None, conditions: list | None, resource_version: str | None
) -> None:
    """`status.guard` and the warning conditions; conditions only over the view they came from."""
    status: PatchStatus = {}
    if guard is not None:
        status["guard"] = guard
    if conditions is not None:
        status["conditions"] = conditions
    if not status:
        return
    try:
        await _write(key, status, resource_version=resource_version if conditions is not None else None)
    except kubernetes.client.ApiException as error:
        log.warning("%s/%s: could not write guard status: %s", *key, error.reason)


async def _write(key: Key, status: PatchStatus, *, resource_version: str | None) -> bool:
    """False when the precondition failed (a newer status won) or the object is gone."""
    try:
        return await kube.patch_status(
            namespace=key[0], name=key[1], status=dict(status), resource_version=resource_version
        )
    except kubernetes.client.ApiException as error:
        if error.status == 404:
            return False
        raise
