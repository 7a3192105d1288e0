"""Rows the guard tests write straight into the registry, as another service or psql would."""

from __future__ import annotations

import uuid

import psycopg


def connect(url: str) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=True)


def new_patch(url: str, *, prefix: str, description: str) -> str:
    """A servable patch row, as if the operator had validated it (rows written by SQL start pending)."""
    patch_id = f"{prefix}-{uuid.uuid4().hex[:10]}"
    with connect(url) as conn:
        conn.execute(
            """INSERT INTO sdk_self_healing_registry (id, sdk_language, error_signature, patch_code, description)
                        VALUES (%s, 'node', %s, 'this.timeout = 30000;', %s)""",
            (patch_id, patch_id, description),
        )
        conn.execute("UPDATE sdk_self_healing_registry SET validation_state = 'valid' WHERE id = %s", (patch_id,))
    return patch_id
