"""Per-developer evidence and per-developer switch-offs (psycopg 3, async); the rule is core/guard/evidence.py."""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping

import psycopg

from selfheal.core.guard.evaluate import Counts

ACTION = "guard-developer"  # the audit action of a switch-off for some developers only


async def counts_by_developer(
    conn: psycopg.AsyncConnection, *, patch_id: str, since: datetime.datetime
) -> dict[str, Counts]:
    """Each developer's applications of a patch since `since`: all, failed, rolled back. As in the
    guard's windows, nothing from before the patch last came back (or was enabled) counts."""
    cursor = await conn.execute(
        """SELECT developer_id, count(*), count(*) FILTER (WHERE NOT success), count(*) FILTER (WHERE rollback_triggered)
           FROM sdk_patch_applications
           WHERE patch_id = %(id)s AND applied_at >= %(since)s
             AND applied_at >= coalesce((SELECT since FROM sdk_guard_state WHERE patch_id = %(id)s), '-infinity')
           GROUP BY developer_id""",
        {"id": patch_id, "since": since},
    )
    return {row[0]: Counts(row[1], row[2], row[3]) for row in await cursor.fetchall()}


async def has_other_users(
    conn: psycopg.AsyncConnection, *, patch_id: str, developers: list[str], since: datetime.datetime
) -> bool:
    """Whether a developer outside `developers` applied the patch since `since`."""
    cursor = await conn.execute(
        """SELECT EXISTS (SELECT 1 FROM sdk_patch_applications
                          WHERE patch_id = %s AND applied_at >= %s AND developer_id <> ALL(%s))""",
        (patch_id, since, developers),
    )
    row = await cursor.fetchone()
    return bool(row and row[0])


async def switched_off_for(conn: psycopg.AsyncConnection, *, patch_id: str) -> frozenset[str]:
    cursor = await conn.execute(
        "SELECT developer_id FROM sdk_patch_developer_switch_offs WHERE patch_id = %s", (patch_id,)
    )
    return frozenset(row[0] for row in await cursor.fetchall())


async def all_switch_offs(conn: psycopg.AsyncConnection) -> dict[str, list[str]]:
    """Developers each patch is switched off for, sorted: what the API refuses to serve, and status shows."""
    cursor = await conn.execute(
        "SELECT patch_id, array_agg(developer_id ORDER BY developer_id) FROM sdk_patch_developer_switch_offs"
        " GROUP BY patch_id"
    )
    return {row[0]: row[1] for row in await cursor.fetchall()}


async def switch_off_for(
    conn: psycopg.AsyncConnection,
    *,
    patch_id: str,
    developers: tuple[str, ...],
    rule: str,
    message: str,
    actor: str,
    details: Mapping[str, object],
) -> list[str]:
    """Switch a patch off for `developers` only, one audit row each, in one transaction; the
    developers it was not already off for (none when the patch is gone or inactive)."""
    done = []
    async with conn.transaction():
        cursor = await conn.execute(
            """SELECT version, revision, source_generation FROM sdk_self_healing_registry
               WHERE id = %s AND active FOR UPDATE""",
            (patch_id,),
        )
        row = await cursor.fetchone()
        if row is None:
            return []
        version, revision, generation = row
        for developer in developers:
            inserted = await conn.execute(
                """INSERT INTO sdk_patch_developer_switch_offs (patch_id, developer_id, rule, message)
                   VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING""",
                (patch_id, developer, rule, message[:2000]),
            )
            if inserted.rowcount != 1:
                continue
            await conn.execute(
                """INSERT INTO sdk_patch_audit (patch_id, action, actor, version, revision, active, source_generation,
                                                reason, details)
                   VALUES (%s, %s, %s, %s, %s, true, %s, %s, %s)""",
                (
                    patch_id,
                    ACTION,
                    actor,
                    version,
                    revision,
                    generation,
                    f"switched off for developer {developer} only: {message}"[:2000],
                    json.dumps({**details, "developer": developer}),
                ),
            )
            done.append(developer)
    return done


async def clear(conn: psycopg.AsyncConnection, *, patch_id: str) -> int:
    """Switch a patch back on for every developer it was off for; how many."""
    cursor = await conn.execute("DELETE FROM sdk_patch_developer_switch_offs WHERE patch_id = %s", (patch_id,))
    return cursor.rowcount
