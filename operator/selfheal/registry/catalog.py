"""What the registry API serves: the servable rows, and the notifications of their changes.

Any registry change notifies `selfheal_registry` with the row's id (a trigger of the schema).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import psycopg
from psycopg.rows import dict_row

# Only rows the operator validated are ever served (rows written by SQL start as pending).
# Compiled operations travel to SDKs, never patch code: rows without them are not servable.
_SERVABLE = """
    SELECT r.*, extract(epoch FROM r.updated_at)::float8 AS updated_epoch
    FROM sdk_self_healing_registry r
    WHERE r.active AND r.validation_state = 'valid' AND r.operations IS NOT NULL
"""


async def servable_rows(conn: psycopg.AsyncConnection, *, ids: Iterable[str] | None = None) -> list[dict]:
    """Every servable row, or those among `ids`."""
    cursor = conn.cursor(row_factory=dict_row)
    if ids is None:
        await cursor.execute(_SERVABLE)
    else:
        await cursor.execute(_SERVABLE + " AND r.id = ANY(%s)", (list(ids),))
    return await cursor.fetchall()


async def known_ids(conn: psycopg.AsyncConnection) -> set[str]:
    """Every registry id, active or not: outcome reports may name any of them."""
    cursor = await conn.execute("SELECT id FROM sdk_self_healing_registry")
    return {row[0] for row in await cursor.fetchall()}


async def listen(conn: psycopg.AsyncConnection) -> None:
    await conn.execute("LISTEN selfheal_registry")


async def changed_ids(conn: psycopg.AsyncConnection) -> set[str]:
    """Wait for registry notifications; the ids changed by one (or a burst of) them.

    The query that follows must run outside `notifies()`, which holds the connection.
    A burst of changes (a GitOps sync of many patches) costs one reload, not one per row.
    """
    changed: set[str] = set()
    async for notify in conn.notifies(timeout=30.0, stop_after=1):
        changed.add(notify.payload)
    if changed:
        await asyncio.sleep(0.02)
        async for notify in conn.notifies(timeout=0.01):
            changed.add(notify.payload)
    else:
        await conn.execute("SELECT 1")  # a silent connection may be a dead one: find out
    return changed
