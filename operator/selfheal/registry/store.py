"""The operator's reads and writes of the registry (psycopg 3, async).

Writes identify themselves as the operator (`selfheal.actor`), so that the triggers of the
schema record history and audit rows in the same transaction and tell operator writes from
hand-written SQL. Every write is idempotent: a generation the registry already holds is
never written again, whatever order events arrive in.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from selfheal.core.models import PatchSpec
from selfheal.core.semver import next_registry_version
from selfheal.core.status import REASON_DELETED, REASON_INVALID_SPEC, REASON_SPEC_INACTIVE, RegistryState

_CONTENT = ("sdk_language", "error_signature", "patch_code", "rollback_code", "description", "severity")
_STATE_COLUMNS = (
    "id::text AS id, version, active, revision, source_uid, source_generation, "
    "deactivation_reason, deactivation_message, " + ", ".join(_CONTENT)
)
_OPTIMISTIC_ATTEMPTS = 5


@dataclass(frozen=True)
class PatchSource:
    """The SelfHealPatch a registry row comes from."""

    namespace: str
    name: str
    uid: str
    generation: int


@dataclass(frozen=True)
class SyncOutcome:
    state: RegistryState
    written: bool


class RegistryConflict(RuntimeError):
    """Another writer kept changing the row; the caller retries later."""


def _state(row: dict) -> RegistryState:
    return RegistryState(
        id=row["id"],
        version=row["version"],
        active=row["active"],
        source_generation=row["source_generation"],
        deactivation_reason=row["deactivation_reason"],
        deactivation_message=row["deactivation_message"],
    )


def _holds(row: dict, source: PatchSource) -> bool:
    """True when the row already reflects this generation (or a later one) of the same object."""
    return row["source_uid"] == source.uid and (row["source_generation"] or 0) >= source.generation


async def _as_operator(conn: psycopg.AsyncConnection) -> None:
    await conn.execute("SET LOCAL selfheal.actor = 'operator'")


async def _current(conn: psycopg.AsyncConnection, source: PatchSource) -> dict | None:
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        f"SELECT {_STATE_COLUMNS} FROM sdk_self_healing_registry WHERE source_namespace = %s AND source_name = %s",
        (source.namespace, source.name),
    )
    return await cursor.fetchone()


async def sync_patch(
    conn: psycopg.AsyncConnection,
    *,
    source: PatchSource,
    spec: PatchSpec,
    operations: dict,
    rollback_operations: dict | None,
) -> SyncOutcome:
    """Make the registry hold `spec` at `source.generation`: one row, history and audit by trigger.

    `operations` and `rollback_operations` are what the code compiled to (patchlang documents):
    they are stored beside the code, and they are what SDKs receive.
    """
    compiled = (Jsonb(operations), Jsonb(rollback_operations) if rollback_operations is not None else None)
    for _ in range(_OPTIMISTIC_ATTEMPTS):
        async with conn.transaction():
            await _as_operator(conn)
            row = await _current(conn, source)
            if row is not None and _holds(row, source):
                return SyncOutcome(_state(row), written=False)
            written = await (
                _insert(conn, source, spec, compiled) if row is None else _update(conn, source, spec, compiled, row)
            )
            if written is not None:
                return SyncOutcome(_state(written), written=True)
    raise RegistryConflict(f"{source.namespace}/{source.name}: registry row kept changing during sync")


def _activity(spec: PatchSpec) -> tuple[bool, str | None, str | None]:
    if spec.active:
        return True, None, None
    return False, REASON_SPEC_INACTIVE, "spec.active is false"


async def _insert(conn: psycopg.AsyncConnection, source: PatchSource, spec: PatchSpec, compiled: tuple) -> dict | None:
    active, reason, message = _activity(spec)
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        f"""INSERT INTO sdk_self_healing_registry
              ({", ".join(_CONTENT)}, version, active, deactivation_reason, deactivation_message,
               source_namespace, source_name, source_uid, source_generation, validation_state,
               operations, rollback_operations)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'valid', %s, %s)
            ON CONFLICT (source_namespace, source_name) DO NOTHING
            RETURNING {_STATE_COLUMNS}""",
        (
            *(getattr(spec, column) for column in _CONTENT),
            spec.version,
            active,
            reason,
            message,
            source.namespace,
            source.name,
            source.uid,
            source.generation,
            *compiled,
        ),
    )
    return await cursor.fetchone()


async def _update(
    conn: psycopg.AsyncConnection, source: PatchSource, spec: PatchSpec, compiled: tuple, row: dict
) -> dict | None:
    content_changed = any(getattr(spec, column) != row[column] for column in _CONTENT)
    version = next_registry_version(current=row["version"], declared=spec.version, content_changed=content_changed)
    active, reason, message = _activity(spec)
    cursor = conn.cursor(row_factory=dict_row)
    # The WHERE clause is an optimistic lock: if anyone wrote the row since we read it, retry.
    await cursor.execute(
        f"""UPDATE sdk_self_healing_registry SET
              {", ".join(f"{column} = %s" for column in _CONTENT)}, version = %s, active = %s,
              deactivation_reason = %s, deactivation_message = %s, source_uid = %s, source_generation = %s,
              validation_state = 'valid', validation_message = NULL, operations = %s, rollback_operations = %s
            WHERE id = %s AND revision = %s AND active = %s
              AND source_uid IS NOT DISTINCT FROM %s AND source_generation IS NOT DISTINCT FROM %s
            RETURNING {_STATE_COLUMNS}""",
        (
            *(getattr(spec, column) for column in _CONTENT),
            version,
            active,
            reason,
            message,
            source.uid,
            source.generation,
            *compiled,
            row["id"],
            row["revision"],
            row["active"],
            row["source_uid"],
            row["source_generation"],
        ),
    )
    return await cursor.fetchone()


async def deactivate_source(
    conn: psycopg.AsyncConnection,
    *,
    source: PatchSource,
    reason: str,
    message: str,
) -> RegistryState | None:
    """Take a patch out of service without touching its code (invalid spec, delete). Idempotent."""
    async with conn.transaction():
        await _as_operator(conn)
        cursor = conn.cursor(row_factory=dict_row)
        await cursor.execute(
            f"""UPDATE sdk_self_healing_registry SET
                  active = false, deactivation_reason = %s, deactivation_message = %s,
                  source_uid = %s, source_generation = GREATEST(coalesce(source_generation, 0), %s)
                WHERE source_namespace = %s AND source_name = %s
                  AND (active OR deactivation_reason IS DISTINCT FROM %s
                       OR source_uid IS DISTINCT FROM %s OR coalesce(source_generation, 0) < %s)
                RETURNING {_STATE_COLUMNS}""",
            (
                reason,
                message[:2000],
                source.uid,
                source.generation,
                source.namespace,
                source.name,
                reason,
                source.uid,
                source.generation,
            ),
        )
        row = await cursor.fetchone()
        if row is None:
            row = await _current(conn, source)
    return _state(row) if row is not None else None


async def mark_invalid(
    conn: psycopg.AsyncConnection, *, source: PatchSource, problems: list[str]
) -> RegistryState | None:
    return await deactivate_source(conn, source=source, reason=REASON_INVALID_SPEC, message="; ".join(problems))


async def retire(conn: psycopg.AsyncConnection, *, source: PatchSource) -> RegistryState | None:
    return await deactivate_source(
        conn, source=source, reason=REASON_DELETED, message="the SelfHealPatch was deleted; its history is kept"
    )


@dataclass(frozen=True)
class SourcedRow:
    namespace: str
    name: str
    state: RegistryState


async def sourced_rows(conn: psycopg.AsyncConnection) -> list[SourcedRow]:
    """Every registry row that comes from a SelfHealPatch, for reflecting registry changes in status."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        f"SELECT source_namespace, source_name, {_STATE_COLUMNS} FROM sdk_self_healing_registry"
        " WHERE source_namespace IS NOT NULL"
    )
    return [SourcedRow(row["source_namespace"], row["source_name"], _state(row)) for row in await cursor.fetchall()]


@dataclass(frozen=True)
class PendingRow:
    id: str
    revision: int
    fields: dict


async def pending_rows(conn: psycopg.AsyncConnection, *, limit: int = 500) -> list[PendingRow]:
    """Rows written or changed by plain SQL, not yet validated (never served meanwhile)."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        f"SELECT id::text AS id, revision, version, {', '.join(_CONTENT)} FROM sdk_self_healing_registry"
        " WHERE validation_state = 'pending' ORDER BY updated_at LIMIT %s",
        (limit,),
    )
    return [PendingRow(row.pop("id"), row.pop("revision"), row) for row in await cursor.fetchall()]


async def record_validation(
    conn: psycopg.AsyncConnection,
    *,
    row: PendingRow,
    problems: list[str],
    operations: dict | None = None,
    rollback_operations: dict | None = None,
) -> bool:
    """Store the verdict for the revision that was checked; an invalid row is switched off.

    A valid row gets the operations its code compiled to (required: a valid row is servable).
    """
    async with conn.transaction():
        await _as_operator(conn)
        if problems:
            message = "; ".join(problems)[:2000]
            cursor = await conn.execute(
                """UPDATE sdk_self_healing_registry SET validation_state = 'invalid', validation_message = %s,
                     active = false, deactivation_reason = %s, deactivation_message = %s
                   WHERE id = %s AND revision = %s AND validation_state = 'pending'""",
                (message, REASON_INVALID_SPEC, message, row.id, row.revision),
            )
        else:
            if operations is None:
                raise ValueError("a valid row needs its compiled operations")
            cursor = await conn.execute(
                """UPDATE sdk_self_healing_registry SET validation_state = 'valid', validation_message = NULL,
                     operations = %s, rollback_operations = %s
                   WHERE id = %s AND revision = %s AND validation_state = 'pending'""",
                (
                    Jsonb(operations),
                    Jsonb(rollback_operations) if rollback_operations is not None else None,
                    row.id,
                    row.revision,
                ),
            )
        return cursor.rowcount == 1
