"""Switching a registry row off and on (psycopg 3, async), with its audit row, in one transaction.

The guard, the kill switch (`selfheal disable`, `DELETE /api/dev/patches/{id}`, the disable
annotation) and reactivation all go through here, so each change is audited the same way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import psycopg
from psycopg.rows import dict_row

from selfheal.core.status import REASON_AUTO_DEACTIVATED, REASON_DEACTIVATED_IN_REGISTRY, REASON_MANUAL_KILL_SWITCH
from selfheal.registry import evidence

# Reasons a reactivation annotation or `selfheal enable` may undo; spec-driven ones need a new spec.
REVERSIBLE_REASONS = (REASON_AUTO_DEACTIVATED, REASON_MANUAL_KILL_SWITCH, REASON_DEACTIVATED_IN_REGISTRY)


@dataclass(frozen=True)
class Deactivated:
    id: str
    namespace: str | None
    name: str | None
    version: str


async def deactivate(
    conn: psycopg.AsyncConnection,
    *,
    patch_id: str,
    reason: str,
    message: str,
    actor: str,
    details: Mapping[str, object],
) -> Deactivated | None:
    """Switch a patch off with its reason and an audit row of figures, in one transaction.

    None when it was already inactive (another writer got there first): nothing is written.
    """
    async with conn.transaction():
        await conn.execute("SELECT set_config('selfheal.actor', %s, true)", (actor,))
        cursor = conn.cursor(row_factory=dict_row)
        await cursor.execute(
            """UPDATE sdk_self_healing_registry
               SET active = false, deactivation_reason = %s, deactivation_message = %s
               WHERE id = %s AND active
               RETURNING id, source_namespace, source_name, version, revision, source_generation""",
            (reason, message[:2000], patch_id),
        )
        row = await cursor.fetchone()
        if row is None:
            return None
        await conn.execute(
            """INSERT INTO sdk_patch_audit (patch_id, action, actor, version, revision, active, source_generation,
                                            reason, details)
               VALUES (%s, %s, %s, %s, %s, false, %s, %s, %s)""",
            (
                patch_id,
                "guard" if reason == REASON_AUTO_DEACTIVATED else "kill-switch",
                actor,
                row["version"],
                row["revision"],
                row["source_generation"],
                message[:2000],
                json.dumps(dict(details)),
            ),
        )
        await conn.execute(
            """INSERT INTO sdk_guard_state AS g (patch_id, pending, verdict) VALUES (%s, '{}', 'Deactivated')
               ON CONFLICT (patch_id) DO UPDATE SET pending = '{}', verdict = 'Deactivated', regression_cusum = 0,
                   regression_total = 0, regression_failures = 0, regression_alarm = false, updated_at = now()""",
            (patch_id,),
        )
    return Deactivated(row["id"], row["source_namespace"], row["source_name"], row["version"])


async def reactivate(conn: psycopg.AsyncConnection, *, patch_id: str, actor: str, token: str | None) -> bool:
    """Bring back a patch the guard, a kill switch or SQL turned off, and for the developers the guard
    switched it off for alone; remember the token used.

    Spec-driven deactivations (spec.active false, invalid, deleted) are not undone here.
    The registry trigger resets the guard's state (0003_guard.sql).
    """
    async with conn.transaction():
        if token is not None:
            # A token is used once, whoever uses it first (the CLI or the operator).
            cursor = await conn.execute(
                "SELECT reactivation_token FROM sdk_guard_state WHERE patch_id = %s FOR UPDATE", (patch_id,)
            )
            row = await cursor.fetchone()
            if row is not None and row[0] == token:
                return False
        await conn.execute("SELECT set_config('selfheal.actor', %s, true)", (actor,))
        cursor = await conn.execute(
            """UPDATE sdk_self_healing_registry SET active = true
               WHERE id = %s AND NOT active AND deactivation_reason = ANY(%s) AND validation_state = 'valid'""",
            (patch_id, list(REVERSIBLE_REASONS)),
        )
        back = cursor.rowcount == 1
        # An active patch switched off for some developers only is back on for them too.
        cleared = await evidence.clear(conn, patch_id=patch_id)
        if cleared and not back:  # still active: start afresh as the registry trigger does for a patch brought back
            await conn.execute(
                """UPDATE sdk_guard_state SET since = now(), pending = '{}', verdict = NULL, regression_cusum = 0,
                       regression_total = 0, regression_failures = 0, regression_alarm = false, updated_at = now()
                   WHERE patch_id = %s""",
                (patch_id,),
            )
        if token is not None:
            await conn.execute(
                """INSERT INTO sdk_guard_state AS g (patch_id, reactivation_token) VALUES (%s, %s)
                   ON CONFLICT (patch_id) DO UPDATE SET reactivation_token = excluded.reactivation_token""",
                (patch_id, token),
            )
        return back or cleared > 0


async def reactivation_tokens(conn: psycopg.AsyncConnection) -> dict[str, str]:
    cursor = await conn.execute(
        "SELECT patch_id, reactivation_token FROM sdk_guard_state WHERE reactivation_token IS NOT NULL"
    )
    return dict(await cursor.fetchall())


async def patch_id_for(conn: psycopg.AsyncConnection, *, namespace: str, name: str) -> str | None:
    cursor = await conn.execute(
        "SELECT id FROM sdk_self_healing_registry WHERE source_namespace = %s AND source_name = %s", (namespace, name)
    )
    row = await cursor.fetchone()
    return row[0] if row else None


async def source_of(conn: psycopg.AsyncConnection, *, patch_id: str) -> tuple[str | None, str | None] | None:
    """(namespace, name) of the SelfHealPatch behind a row, (None, None) for a row written in SQL;
    None when there is no such row."""
    cursor = await conn.execute(
        "SELECT source_namespace, source_name FROM sdk_self_healing_registry WHERE id = %s", (patch_id,)
    )
    row = await cursor.fetchone()
    return None if row is None else (row[0], row[1])
