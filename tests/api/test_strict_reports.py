"""Reports are strict JSON and a bad row costs only itself (issue 14, point 5).

Against a real `selfheal api` and PostgreSQL: what jsonb or text would refuse (NaN, Infinity,
1e999, NUL, a lone surrogate) is refused at the door naming its field, never answered 202 or
`recorded: true` and then dropped; in a batch, the bad report alone is refused and the others
are written in one COPY. The writer itself isolates a row the database still refuses in a few
COPYs, not one per row of its batch.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import psycopg
import pytest

from selfheal.api.outcomes import OutcomeWriter
from selfheal.registry import outcomes as outcome_rows
from selfheal.registry.outcomes import Application
from tests.support import wait_until


def stored(database_url: str, developer: str) -> int:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT count(*) FROM sdk_patch_applications WHERE developer_id = %s", (developer,)
        ).fetchone()[0]


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e999", '"\\ud800"'])
def test_a_lookup_with_a_value_jsonb_refuses_is_400_and_nothing_is_recorded(api_server, value):
    developer = f"strict-lookup-{abs(hash(value))}"
    token = api_server.token(developer)
    raw = ('{"sdk": "node", "error": "E_STRICT", "context": {"v": ' + value + "}}").encode()
    status, _, answer = api_server.request("POST", "/api/dev/self-heal", token=token, raw=raw)
    assert (status, answer["fields"][0]["field"]) == (400, "context.v"), answer
    # A valid miss from the same developer is recorded: the proof that the writer has caught up.
    assert (
        api_server.request("POST", "/api/dev/self-heal", token=token, body={"sdk": "node", "error": "E_OK"})[0] == 404
    )
    wait_until(lambda: stored(api_server.database_url, developer) == 1, timeout=10, what="the valid miss stored")
    with psycopg.connect(api_server.database_url) as conn:
        errors = conn.execute(
            "SELECT error_encountered FROM sdk_patch_applications WHERE developer_id = %s", (developer,)
        ).fetchall()
    assert errors == [("E_OK",)]


def test_one_poisoned_report_in_500_costs_only_itself(api_server):
    token = api_server.token("strict-batch")
    reports = [{"sdk": "python", "error": f"E{i}", "success": True, "context": {"i": i, "r": 0.5}} for i in range(500)]
    raw = json.dumps({"reports": reports}).replace('"i": 250, "r": 0.5', '"i": 250, "r": NaN').encode()
    status, _, answer = api_server.request("POST", "/api/dev/self-heal/reports", token=token, raw=raw)
    assert status == 202 and answer["accepted"] == 499, answer
    assert [(r["index"], r["field"]) for r in answer["rejected"]] == [(250, "reports.250.context.r")]
    wait_until(lambda: stored(api_server.database_url, "strict-batch") == 499, timeout=10, what="499 rows stored")
    assert "refused by the database" not in api_server.log() and "split after" not in api_server.log()


def application(error: str) -> Application:
    return Application(None, "split-test", "node", error, False, False, False, "{}", datetime.now(UTC))


def test_a_row_the_database_refuses_is_isolated_in_a_few_copies(fresh_database, monkeypatch):
    copies = 0
    original = outcome_rows.copy_lines

    async def counted(conn, batch):
        nonlocal copies
        copies += 1
        return await original(conn, batch)

    monkeypatch.setattr(outcome_rows, "copy_lines", counted)

    async def scenario() -> OutcomeWriter:
        writer = OutcomeWriter(fresh_database, flush_interval=0.05, writers=1)
        rows = [application(f"row {i}" if i != 700 else "bad \x00 row") for i in range(1000)]
        assert writer.offer(rows)
        task = asyncio.create_task(writer.run())
        await writer.flush(timeout=20)
        writer.stop()
        await task
        return writer

    writer = asyncio.run(scenario())
    assert (writer.written, writer.refused, writer.pending, writer.pending_bytes) == (999, 1, 0, 0)
    assert copies <= 2 * 10 + 1, f"{copies} COPYs for one refused row in 1,000"  # one per row before
    assert stored(fresh_database, "split-test") == 999


def test_the_buffer_is_bounded_in_bytes_as_well_as_in_rows(fresh_database):
    unreachable = "postgresql://nobody@127.0.0.1:1/none"
    writer = OutcomeWriter(unreachable, capacity=100_000, capacity_bytes=1024 * 1024)
    context = json.dumps({"pad": "x" * 64 * 1024})
    big = Application(None, "d", "node", "E", True, False, True, context, datetime.now(UTC))
    taken = 0
    while writer.offer([big]):
        taken += 1
    # 64 KB contexts: 15 fit in 1 MiB; counted in rows, all 100,000 would have (6 GB).
    assert taken == 15 and writer.pending_bytes <= 1024 * 1024 and writer.offer([application("small")])
