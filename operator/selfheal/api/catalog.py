"""The servable patches, held in memory and refreshed by PostgreSQL LISTEN/NOTIFY.

Lookups never touch the database. Any registry change notifies `selfheal_registry` (a trigger
of the schema); the catalog then reloads the active, validated rows and swaps its index in one
assignment. If PostgreSQL goes away, lookups keep serving the last good set while the listener
reconnects with backoff.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from dataclasses import dataclass, field

import psycopg

from selfheal.core.matching import Candidate, Match, PatchIndex
from selfheal.registry import catalog as servable
from selfheal.registry import evidence
from selfheal.registry.errors import first_line

log = logging.getLogger("selfheal.api.catalog")

# Beyond this many changed ids in one burst, a full reload is cheaper than a partial one.
_INCREMENTAL_LIMIT = 2_000


@dataclass(frozen=True)
class ServedPatch:
    id: str
    sdk_language: str
    error_signature: str
    description: str
    severity: str
    version: str
    sequence: int
    row: dict = field(repr=False)
    candidate: Candidate = field(repr=False)


@dataclass
class Snapshot:
    index: PatchIndex
    patches: dict[str, ServedPatch]
    known_ids: frozenset[str]  # every registry id, active or not: reports may name any of them
    loaded_at: float
    switched_off: frozenset[tuple[str, str]]  # (patch id, developer id): the guard switched it off for them


class Catalog:
    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.snapshot: Snapshot | None = None
        self.healthy = False

    def knows(self, patch_id: str) -> bool:
        return self.snapshot is not None and patch_id in self.snapshot.known_ids

    def switched_off_for(self, patch_id: str, developer_id: str) -> bool:
        snapshot = self.snapshot
        return (
            snapshot is not None and bool(snapshot.switched_off) and (patch_id, developer_id) in snapshot.switched_off
        )

    def find(
        self, sdk_language: str, message: str, status: int | None = None, code: str | None = None
    ) -> tuple[ServedPatch, Match] | None:
        """The patch answering this error, and why (see `matching`); None when no patch does.

        No answer is remembered per message: SDK errors carry request ids, so messages rarely
        repeat, and the index answers in a few dict accesses anyway.
        """
        snapshot = self.snapshot
        if snapshot is None:
            return None
        match = snapshot.index.lookup(sdk_language, message, status, code)
        return (snapshot.patches[match.candidate.id], match) if match else None

    async def reload(self, conn: psycopg.AsyncConnection, *, changed: set[str] | None = None) -> None:
        """Load every servable row, or only the `changed` ids on top of the current snapshot."""
        if changed is None or self.snapshot is None or len(changed) > _INCREMENTAL_LIMIT:
            rows = await servable.servable_rows(conn)
            patches: dict[str, ServedPatch] = {}
            known: set[str] | frozenset[str] = await servable.known_ids(conn)
        else:
            rows = await servable.servable_rows(conn, ids=changed)
            patches = {id: patch for id, patch in self.snapshot.patches.items() if id not in changed}
            known = self.snapshot.known_ids | changed
        for row in rows:
            patches[row["id"]] = _served(row)
        index = PatchIndex(patch.candidate for patch in patches.values())
        # Few rows (the guard's per-developer switch-offs), so every reload reads them all.
        switched_off = frozenset(
            (patch_id, developer)
            for patch_id, developers in (await evidence.all_switch_offs(conn)).items()
            for developer in developers
        )
        self.snapshot = Snapshot(
            index=index,
            patches=patches,
            known_ids=frozenset(known),
            loaded_at=time.time(),
            switched_off=switched_off,
        )
        # Tens of thousands of long-lived objects: keep them out of the cyclic collector's full
        # passes, which otherwise stall lookups (refcounting still frees old snapshots).
        gc.freeze()

    async def follow(self, *, ready: asyncio.Event | None = None) -> None:
        """Load, then reload on every notification; reconnect with backoff when the database is away."""
        delay = 0.5
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.database_url, autocommit=True, connect_timeout=3
                ) as conn:
                    await servable.listen(conn)
                    await self.reload(conn)
                    self.healthy, delay = True, 0.5
                    if ready is not None:
                        ready.set()
                    log.info("catalog loaded: %d servable patches", len(self.snapshot.patches if self.snapshot else ()))
                    while True:
                        changed = await servable.changed_ids(conn)
                        if changed:
                            await self.reload(conn, changed=changed)
            except psycopg.Error as error:
                self.healthy = False
                log.warning(
                    "catalog: registry unreachable, serving the last good set (%s); retry in %.1fs",
                    first_line(error),
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)


def _served(row: dict) -> ServedPatch:
    return ServedPatch(
        id=row["id"],
        sdk_language=row["sdk_language"],
        error_signature=row["error_signature"],
        description=row["description"],
        severity=row["severity"],
        version=row["version"],
        sequence=row["sequence"],
        row=row,
        candidate=Candidate(
            id=row["id"],
            sdk_language=row["sdk_language"],
            error_signature=row["error_signature"],
            severity=row["severity"],
            updated_at=row["updated_epoch"],
        ),
    )
