"""Per-developer evidence against the real PostgreSQL: the guard cycle, its switch-offs and audit rows.

Rows are written in SQL, as the runbook does: database access is trusted and such rows count
under their own developer_id (the receipts are the API's check, tests/api/test_receipts.py).
"""

from __future__ import annotations

import asyncio
import datetime
import json

import psycopg
import pytest

from selfheal.core.guard.rules import GuardSettings
from selfheal.registry import activation
from tests.guard.registry_rows import connect, new_patch
from tests.guard.test_guard_db import T0, Guard, at, registry_row


@pytest.fixture(scope="module")
def url(fresh_database) -> str:
    return fresh_database


def add_rows(database_url: str, patch_id: str, developer: str, *, start: float, count: int, bad: int) -> None:
    """`count` applications of `developer` spread over the second after `start`, the first `bad` rolled back."""
    rows = [
        (
            patch_id,
            developer,
            "node",
            "ECONNREFUSED",
            index >= bad,
            index < bad,
            T0 + datetime.timedelta(seconds=start + index / count),
        )
        for index in range(count)
    ]
    with connect(database_url) as conn, conn.cursor() as cursor:
        with cursor.copy(
            "COPY sdk_patch_applications (patch_id, developer_id, sdk_language, error_encountered,"
            " success, rollback_triggered, applied_at) FROM STDIN"
        ) as copy:
            for row in rows:
                copy.write_row(row)


def switch_offs(database_url: str, patch_id: str) -> list[str]:
    with connect(database_url) as conn:
        rows = conn.execute(
            "SELECT developer_id FROM sdk_patch_developer_switch_offs WHERE patch_id = %s ORDER BY 1", (patch_id,)
        ).fetchall()
    return [row[0] for row in rows]


def audit(database_url: str, patch_id: str) -> list[tuple[str, dict]]:
    with connect(database_url) as conn:
        rows = conn.execute(
            "SELECT action, details FROM sdk_patch_audit WHERE patch_id = %s AND details IS NOT NULL ORDER BY id",
            (patch_id,),
        ).fetchall()
    return [(action, details if isinstance(details, dict) else json.loads(details)) for action, details in rows]


def test_one_developer_flooding_failures_switches_the_patch_off_for_himself_only(url):
    patch_id = new_patch(url, prefix="ev", description="evidence test")
    for second in range(0, 60, 5):  # two shops use it healthily
        add_rows(url, patch_id, "shop-a", start=second, count=10, bad=0)
        add_rows(url, patch_id, "shop-b", start=second, count=10, bad=1 if second % 20 == 0 else 0)
    add_rows(url, patch_id, "attacker", start=60, count=300, bad=300)
    decision = Guard(url, GuardSettings()).run(at(62))[patch_id]
    assert decision.verdict.action == "deactivate" and decision.deactivated is None
    assert decision.switched_off_for == ("attacker",)
    assert registry_row(url, patch_id)["active"] is True
    assert switch_offs(url, patch_id) == ["attacker"]
    [(action, details)] = audit(url, patch_id)
    assert action == "guard-developer"
    assert (details["developer"], details["scope"], details["convicted"]) == ("attacker", "developers", ["attacker"])
    assert details["rule"] == "HighRollbackRate" and details["rollbacks"] >= 300

    # The next cycles on the same evidence change nothing: no second row, still on for the shops.
    again = Guard(url, GuardSettings()).run(at(63))[patch_id]
    assert again.switched_off_for == () and again.deactivated is None
    assert len(audit(url, patch_id)) == 1 and registry_row(url, patch_id)["active"] is True


def test_a_second_developer_convicting_it_switches_it_off_for_everyone(url):
    patch_id = new_patch(url, prefix="ev", description="evidence test")
    add_rows(url, patch_id, "shop-a", start=0, count=50, bad=0)  # yesterday's user, still there
    add_rows(url, patch_id, "shop-b", start=55, count=100, bad=90)
    guard = Guard(url, GuardSettings())
    assert guard.run(at(57))[patch_id].switched_off_for == ("shop-b",)
    add_rows(url, patch_id, "shop-c", start=58, count=100, bad=90)
    decision = guard.run(at(59.5))[patch_id]
    assert decision.deactivated is not None and decision.scope is not None
    assert decision.scope.convicted == ("shop-b", "shop-c")
    row = registry_row(url, patch_id)
    assert row["active"] is False and "the reports of 2 developers, each on their own" in row["deactivation_message"]
    assert audit(url, patch_id)[-1][1]["scope"] == "everyone"


def test_many_small_users_switch_a_bad_patch_off_for_everyone(url):
    patch_id = new_patch(url, prefix="ev", description="evidence test")
    for shop in range(8):  # each below the early cut-off's minimum samples; together, clearly broken
        add_rows(url, patch_id, f"shop-{shop}", start=10, count=12, bad=11)
    decision = Guard(url, GuardSettings()).run(at(12))[patch_id]
    assert decision.deactivated is not None
    assert decision.scope is not None and decision.scope.convicted == () and decision.scope.users == 8


def test_reactivation_switches_the_patch_back_on_for_the_developers_it_was_off_for(url):
    patch_id = new_patch(url, prefix="ev", description="evidence test")
    add_rows(url, patch_id, "shop-a", start=0, count=40, bad=0)
    add_rows(url, patch_id, "attacker", start=30, count=300, bad=300)
    Guard(url, GuardSettings()).run(at(32))
    assert switch_offs(url, patch_id) == ["attacker"]

    async def enable() -> bool:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            return await activation.reactivate(conn, patch_id=patch_id, actor="cli:test", token=None)

    assert asyncio.run(enable()) is True
    assert switch_offs(url, patch_id) == []
