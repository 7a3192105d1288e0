"""The report writer against the real registry: a row the database refuses never blocks the others."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta, timezone

import psycopg

from selfheal.api.outcomes import OutcomeWriter
from selfheal.registry.outcomes import Application


def application(error: str, developer: str = "writer-test") -> Application:
    """An outcome row; each test that reads rows back gives its own developer (the database is the module's)."""
    return Application(
        patch_id=None,
        developer_id=developer,
        sdk_language="node",
        error_encountered=error,
        success=False,
        rollback_triggered=False,
        patch_applied=False,
        context="{}",
        applied_at=datetime.now(UTC),
    )


def test_a_refused_row_is_reported_and_the_rest_is_written(fresh_database):
    async def scenario() -> OutcomeWriter:
        writer = OutcomeWriter(fresh_database, flush_interval=0.05)
        task = asyncio.create_task(writer.run())
        # PostgreSQL text cannot hold U+0000: the API refuses it, this proves the writer survives it anyway.
        rows = [application(error, developer="writer-refused") for error in ("first", "bad \x00 byte", "third")]
        assert writer.offer(rows)
        await writer.flush(timeout=10)
        writer.stop()
        await task
        return writer

    writer = asyncio.run(scenario())
    assert (writer.pending, writer.written, writer.refused) == (0, 2, 1)
    with psycopg.connect(fresh_database) as conn:
        rows = conn.execute(
            "SELECT error_encountered FROM sdk_patch_applications WHERE developer_id = 'writer-refused' ORDER BY id"
        ).fetchall()
    assert rows == [("first",), ("third",)]


def test_nul_characters_are_refused_at_the_door(api_server):
    token = api_server.token("dev-nul")
    status, _, body = api_server.request(
        "POST", "/api/dev/self-heal", token=token, body={"sdk": "node", "error": "x\u0000y"}
    )
    assert status == 400 and body["fields"][0]["field"] == "error"
    status, _, body = api_server.request(
        "POST",
        "/api/dev/self-heal/reports",
        token=token,
        body={"reports": [{"sdk": "node", "error": "x", "success": False, "context": {"k": "\u0000"}}]},
    )
    assert status == 400 and body["fields"][0]["field"] == "reports.0.context.k"


def test_a_full_buffer_makes_batches_wait_for_room_then_refuse(fresh_database):
    from tests.support import refused_port

    with refused_port() as port:
        _a_full_buffer(f"postgresql://nobody@127.0.0.1:{port}/none")


def _a_full_buffer(unreachable: str) -> None:
    async def scenario() -> tuple[bool, float, bool]:
        writer = OutcomeWriter(unreachable, capacity=1000, flush_interval=0.05)
        assert writer.offer([application(f"r{index}") for index in range(900)])
        started = asyncio.get_running_loop().time()
        room = await writer.wait_for_room(500, timeout=0.3)
        waited = asyncio.get_running_loop().time() - started
        return room, waited, await writer.wait_for_room(100, timeout=0.3)

    room, waited, small_fits = asyncio.run(scenario())
    assert room is False and waited >= 0.3 and small_fits is True


def test_waiting_batches_get_room_as_soon_as_rows_are_written(fresh_database):
    async def scenario() -> float:
        writer = OutcomeWriter(fresh_database, capacity=1000, flush_interval=0.05)
        assert writer.offer([application(f"w{index}") for index in range(900)])
        task = asyncio.create_task(writer.run())
        started = asyncio.get_running_loop().time()
        assert await writer.wait_for_room(500, timeout=10)
        waited = asyncio.get_running_loop().time() - started
        await writer.flush(timeout=10)
        writer.stop()
        await task
        return waited

    assert asyncio.run(scenario()) < 5
    with psycopg.connect(fresh_database) as conn:
        assert (
            conn.execute(
                "SELECT count(*) FROM sdk_patch_applications WHERE error_encountered LIKE 'w%%'"
                " AND developer_id = 'writer-test'"
            ).fetchone()[0]
            == 900
        )


def test_rows_reach_the_table_exactly_whatever_their_text_holds(fresh_database):
    awkward = 'tab\there, new\nline, cr\r, back\\slash, \\N, quote " é ⚡'
    applied_at = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    row = Application(
        patch_id=None,
        developer_id="copy\ttest",
        sdk_language="python",
        error_encountered=awkward,
        success=True,
        rollback_triggered=True,
        patch_applied=False,
        context='{"k": "a\\\\b\\tc", "n": [1, null]}',
        applied_at=applied_at,
    )

    async def scenario() -> None:
        writer = OutcomeWriter(fresh_database, flush_interval=0.05)
        task = asyncio.create_task(writer.run())
        assert writer.offer([row])
        await writer.flush(timeout=10)
        writer.stop()
        await task
        assert (writer.written, writer.refused) == (1, 0)

    asyncio.run(scenario())
    with psycopg.connect(fresh_database) as conn:
        stored = conn.execute(
            "SELECT patch_id, developer_id, sdk_language, error_encountered, success,"
            " rollback_triggered, patch_applied, context, applied_at FROM sdk_patch_applications"
            " WHERE developer_id = %s",
            ("copy\ttest",),
        ).fetchone()
    assert stored == (
        None,
        "copy\ttest",
        "python",
        awkward,
        True,
        True,
        False,
        {"k": "a\\b\tc", "n": [1, None]},
        applied_at,
    )


def test_each_row_keeps_its_own_time_and_text_in_a_batch(fresh_database):
    """Times are formatted once per run of equal times: equal but distinct datetimes (each report
    parsed on its own), a new time, the same instant in another zone, and back, each stored right;
    rows with and without characters to escape, with and without a patch, side by side."""
    first = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    times = [
        first,
        first.replace(),  # equal, another object
        datetime(2026, 1, 2, 3, 4, 6, tzinfo=UTC),
        first.astimezone(timezone(timedelta(hours=2))),
        datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC),
        first,
    ]
    rows = [
        Application(
            patch_id=None,
            developer_id=f"times-test-{index}",
            sdk_language="node",
            error_encountered="plain" if index % 2 else "tab\there\\",
            success=bool(index % 2),
            rollback_triggered=not index % 2,
            patch_applied=False,
            context="{}" if index % 3 else '{"k": "a\\tb"}',
            applied_at=at,
        )
        for index, at in enumerate(times)
    ]

    async def scenario() -> None:
        writer = OutcomeWriter(fresh_database, flush_interval=0.05)
        task = asyncio.create_task(writer.run())
        assert writer.offer(rows)
        await writer.flush(timeout=10)
        writer.stop()
        await task
        assert (writer.written, writer.refused) == (len(rows), 0)

    asyncio.run(scenario())
    with psycopg.connect(fresh_database) as conn:
        stored = conn.execute(
            "SELECT developer_id, error_encountered, success, rollback_triggered, context, applied_at"
            " FROM sdk_patch_applications WHERE developer_id LIKE 'times-test-%' ORDER BY developer_id"
        ).fetchall()
    assert stored == [
        (
            row.developer_id,
            row.error_encountered,
            row.success,
            row.rollback_triggered,
            json.loads(row.context),
            row.applied_at,
        )
        for row in rows
    ]
