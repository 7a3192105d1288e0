"""Sync: what the registry holds for each SelfHealPatch, and rows written outside the operator.

A patch is validated and compiled (core.validation) before any write: an invalid one is
recorded as such and never served. Every write is idempotent (registry.store), so kopf may
retry a handler any number of times.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import psycopg

from selfheal.core.models import SpecError
from selfheal.core.patchlang import AllowedHosts
from selfheal.core.status import RegistryState
from selfheal.core.validation import ValidPatch, validate_patch, validate_row
from selfheal.registry import store
from selfheal.registry.store import PatchSource, SyncOutcome

log = logging.getLogger("selfheal.registry-watch")


def check(spec: Mapping[str, Any], *, allowed_hosts: AllowedHosts) -> ValidPatch | list[str]:
    """The compiled patch, or the problems that keep it from being served (each names its field)."""
    try:
        return validate_patch(dict(spec), allowed_hosts=allowed_hosts)
    except SpecError as error:
        return error.problems


async def record_valid(conn: psycopg.AsyncConnection, *, source: PatchSource, valid: ValidPatch) -> SyncOutcome:
    return await store.sync_patch(
        conn, source=source, spec=valid.spec, operations=valid.operations, rollback_operations=valid.rollback_operations
    )


async def record_invalid(
    conn: psycopg.AsyncConnection, *, source: PatchSource, problems: list[str]
) -> RegistryState | None:
    return await store.mark_invalid(conn, source=source, problems=problems)


async def retire(conn: psycopg.AsyncConnection, *, source: PatchSource) -> RegistryState | None:
    """The resource is gone: its row goes inactive (reason Deleted), its history stays."""
    return await store.retire(conn, source=source)


async def validate_rows_written_outside(conn: psycopg.AsyncConnection, *, allowed_hosts: AllowedHosts) -> None:
    """Rows written by plain SQL (the runbook's INSERT/UPDATE) get their compiled operations, or
    are switched off as invalid; until then they are never served."""
    for row in await store.pending_rows(conn):
        try:
            valid, problems = validate_row(row.fields, allowed_hosts=allowed_hosts), []
        except SpecError as error:
            valid, problems = None, error.problems
        if await store.record_validation(
            conn,
            row=row,
            problems=problems,
            operations=valid.operations if valid else None,
            rollback_operations=valid.rollback_operations if valid else None,
        ):
            verdict = "invalid: " + "; ".join(problems) if problems else "valid"
            log.info("registry row %s (revision %s) written outside the operator is %s", row.id, row.revision, verdict)
