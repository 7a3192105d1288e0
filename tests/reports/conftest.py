"""A registry seeded with applications at fixed times, so every report's figures are exact.

The reports run with `--as-of AS_OF`: the window is (AS_OF - window, AS_OF]. A few rows are
relative to now() for the runbook's queries run unchanged (no --as-of).
"""

from __future__ import annotations

import datetime
import json

import psycopg
import pytest

from tests.api_server import selfheal

AS_OF = datetime.datetime(2025, 6, 15, 12, 0, tzinfo=datetime.UTC)
QUIET_DAY = datetime.datetime(2025, 6, 12, 12, 0, tzinfo=datetime.UTC)  # a good day: the checklist passes

PATCHES = [
    # id, language, signature, description
    ("p-econn", "node", "ECONNREFUSED", "Fallback vers API de backup"),
    ("p-401", "python", "401", "Fallback API key"),
    ("p-timeout", "node", "Timeout", "Longer timeout"),
    ("p-currency", "python", "invalid_currency", "XOF by default"),
]


def _minutes(n: float) -> datetime.timedelta:
    return datetime.timedelta(minutes=n)


def applications() -> list[tuple]:
    """(patch_id, developer_id, language, error, success, rollback, patch_applied, applied_at)."""
    rows = []
    # p-econn: 120 applications in the last 2 hours (busy), failures at k = 20, 40, …, 120, rollbacks at 20, 60, 100.
    for k in range(1, 121):
        rows.append(
            (
                "p-econn",
                "dev-a",
                "node",
                "ECONNREFUSED 10.1.1.1:443",
                k % 20 != 0,
                k in (20, 60, 100),
                True,
                AS_OF - _minutes(k),
            )
        )
    # p-401: 20 applications 2 h to 2 h 19 min ago, 12 failures (the oldest ones), 8 rollbacks.
    for k in range(20):
        rows.append(("p-401", "dev-b", "python", "401 Unauthorized", k >= 12, k < 8, True, AS_OF - _minutes(120 + k)))
    # p-timeout: 5 good applications 3 h ago, and 50 on the quiet day.
    for k in range(5):
        rows.append(("p-timeout", "dev-c", "node", "Timeout after 10000 ms", True, False, True, AS_OF - _minutes(180)))
    for k in range(50):
        rows.append(
            ("p-timeout", "dev-c", "node", "Timeout after 10000 ms", True, False, True, QUIET_DAY - _minutes(240))
        )
    # p-econn, 45 days ago: a failure outside every window (the export's 30 days included).
    rows.append(
        (
            "p-econn",
            "dev-a",
            "node",
            "ECONNREFUSED 10.1.1.1:443",
            False,
            False,
            True,
            AS_OF - datetime.timedelta(days=45),
        )
    )
    # Errors no patch answered (patch_applied = false, no patch id).
    for k in range(4):
        rows.append((None, "dev-d", "python", "KeyError: amount", False, False, False, AS_OF - _minutes(30 + k)))
    for when in (AS_OF - _minutes(50), AS_OF - _minutes(55), AS_OF - datetime.timedelta(days=5)):
        rows.append((None, "dev-a", "node", "ETIMEDOUT 10.0.0.1:443", False, False, False, when))
    # The errors p-econn and p-401 repair, first seen 2 h and 12 h before their first successful application.
    first_econn_success = AS_OF - _minutes(119)
    first_401_success = AS_OF - _minutes(120 + 19)
    for when in (first_econn_success - _minutes(120), first_econn_success - _minutes(90)):
        rows.append((None, "dev-a", "node", "ECONNREFUSED 10.1.1.1:443", False, False, False, when))
    rows.append(
        (
            None,
            "dev-b",
            "python",
            "401 Unauthorized",
            False,
            False,
            False,
            first_401_success - datetime.timedelta(hours=12),
        )
    )
    return rows


@pytest.fixture(scope="module")
def seeded(fresh_database) -> str:
    with psycopg.connect(fresh_database, autocommit=True) as conn:
        for patch_id, language, signature, description in PATCHES:
            conn.execute(
                """INSERT INTO sdk_self_healing_registry (id, sdk_language, error_signature, patch_code, description,
                                                          severity, created_at)
                   VALUES (%s, %s, %s, 'x = 1', %s, 'medium', %s)""",
                (patch_id, language, signature, description, AS_OF - datetime.timedelta(days=60)),
            )
        with conn.cursor() as cur:
            cur.executemany(
                """INSERT INTO sdk_patch_applications (patch_id, developer_id, sdk_language, error_encountered,
                                                       success, rollback_triggered, patch_applied, context, applied_at)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, '{"test": true}', %s)""",
                applications(),
            )
            # Relative to now(), for the runbook's queries run unchanged: p-timeout, 3 applications, 1 rollback.
            cur.execute(
                """INSERT INTO sdk_patch_applications (patch_id, developer_id, sdk_language, error_encountered,
                                                       success, rollback_triggered, patch_applied, applied_at)
                   SELECT 'p-timeout', 'dev-c', 'node', 'Timeout after 10000 ms', k <> 1, k = 1, true,
                          now() - k * interval '10 minutes'
                   FROM generate_series(1, 3) k"""
            )
        tokens = [
            ("t-a", "dev-a", "developer", None),
            ("t-e", "dev-e", "developer", None),
            ("t-f", "dev-f", "developer", datetime.datetime(2025, 1, 2, tzinfo=datetime.UTC)),
            ("t-admin", "admin-1", "dev_admin", None),
        ]
        for token_id, developer, role, revoked_at in tokens:
            conn.execute(
                """INSERT INTO selfheal_api_tokens (id, token_sha256, developer_id, role, created_at, revoked_at)
                   VALUES (%s, %s, %s, %s, '2025-01-01T00:00:00Z', %s)""",
                (token_id, f"sha-{token_id}", developer, role, revoked_at),
            )
    return fresh_database


def report(
    database_url: str, *args: str, as_of: datetime.datetime | None = AS_OF, fmt: str = "json", expect_exit: int = 0
):
    """Run `selfheal report ARGS…` and return its parsed JSON (or text for other formats)."""
    argv = ["report", *args, "--format", fmt]
    if as_of is not None:
        argv += ["--as-of", as_of.strftime("%Y-%m-%dT%H:%M:%S%z")]
    result = selfheal(*argv, database_url=database_url, check=False)
    assert result.returncode == expect_exit, (result.returncode, result.stdout, result.stderr)
    return json.loads(result.stdout) if fmt == "json" else result.stdout
