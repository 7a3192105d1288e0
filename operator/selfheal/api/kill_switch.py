"""`DELETE /api/dev/patches/{id}`: the incident kill switch, the same deactivation the guard uses.

The registry row goes off at once (one transaction with its audit row); when the row comes
from a SelfHealPatch, the disable annotation keeps it off across spec changes until
`selfheal enable`. Spec is never written, so GitOps tools have nothing to revert.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import kubernetes
import psycopg

from selfheal import GROUP, PLURAL, VERSION
from selfheal.registry import guard_store
from selfheal.status import REASON_MANUAL_KILL_SWITCH


@dataclass(frozen=True)
class KillSwitchResult:
    found: bool
    switched_off: bool
    source: tuple[str, str] | None


async def switch_off(database_url: str, *, patch_id: str, actor: str, reason: str) -> KillSwitchResult:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True, connect_timeout=3) as conn:
        cursor = await conn.execute(
            "SELECT source_namespace, source_name FROM sdk_self_healing_registry WHERE id = %s", (patch_id,))
        row = await cursor.fetchone()
        if row is None:
            return KillSwitchResult(found=False, switched_off=False, source=None)
        done = await guard_store.deactivate(conn, patch_id=patch_id, reason=REASON_MANUAL_KILL_SWITCH, actor=actor,
                                            message=f"kill switch by {actor}: {reason}",
                                            details={"reason": reason, "by": actor})
    return KillSwitchResult(found=True, switched_off=done is not None,
                            source=(row[0], row[1]) if row[0] is not None else None)


async def annotate_disabled(api: kubernetes.client.CustomObjectsApi, *, namespace: str, name: str,
                            reason: str) -> None:
    from selfheal.controller.guard_loop import ANNOTATION_DISABLE

    await asyncio.to_thread(api.patch_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, name,
                            {"metadata": {"annotations": {ANNOTATION_DISABLE: reason}}})
