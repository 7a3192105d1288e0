"""The report writer against the real registry: a row the database refuses never blocks the others."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import psycopg

from selfheal.api.reports import Application, ReportWriter


def application(error: str) -> Application:
    return Application(patch_id=None, developer_id="writer-test", sdk_language="node", error_encountered=error,
                       success=False, rollback_triggered=False, patch_applied=False, context="{}",
                       applied_at=datetime.now(timezone.utc))


def test_a_refused_row_is_reported_and_the_rest_is_written(fresh_database):
    async def scenario() -> ReportWriter:
        writer = ReportWriter(fresh_database, flush_interval=0.05)
        task = asyncio.create_task(writer.run())
        # PostgreSQL text cannot hold U+0000: the API refuses it, this proves the writer survives it anyway.
        assert writer.offer([application("first"), application("bad \x00 byte"), application("third")])
        await writer.flush(timeout=10)
        writer.stop()
        await task
        return writer

    writer = asyncio.run(scenario())
    assert (writer.pending, writer.written, writer.refused) == (0, 2, 1)
    with psycopg.connect(fresh_database) as conn:
        rows = conn.execute("SELECT error_encountered FROM sdk_patch_applications WHERE developer_id = 'writer-test'"
                            " ORDER BY id").fetchall()
    assert rows == [("first",), ("third",)]


def test_nul_characters_are_refused_at_the_door(api_server):
    token = api_server.token("dev-nul")
    status, _, body = api_server.request("POST", "/api/dev/self-heal", token=token,
                                         body={"sdk": "node", "error": "x\u0000y"})
    assert status == 400 and body["fields"][0]["field"] == "error"
    status, _, body = api_server.request("POST", "/api/dev/self-heal/reports", token=token, body={
        "reports": [{"sdk": "node", "error": "x", "success": False, "context": {"k": "\u0000"}}]})
    assert status == 400 and body["fields"][0]["field"] == "reports.0.context"
