"""Servable patches p00000…, written straight into the registry as the operator writes them."""

from __future__ import annotations

import json

import psycopg

OPERATIONS = json.dumps(
    {
        "format": "selfheal.operations",
        "version": 1,
        "operations": [{"op": "set", "setting": "timeout_ms", "value": 30000}],
    }
)


def seed_patches(url: str, count: int) -> None:
    """Patches p00000… matching the errors E00000…, validated and compiled."""
    with psycopg.connect(url) as conn:
        conn.execute("SET LOCAL selfheal.actor = 'operator'")
        with conn.cursor().copy(
            "COPY sdk_self_healing_registry (id, sdk_language, error_signature, patch_code,"
            " description, severity, validation_state, operations) FROM STDIN"
        ) as copy:
            for index in range(count):
                copy.write_row(
                    (
                        f"p{index:05d}",
                        "node",
                        f"E{index:05d}",
                        "this.timeout = 30000;",
                        f"bench patch {index}",
                        "low",
                        "valid",
                        OPERATIONS,
                    )
                )
