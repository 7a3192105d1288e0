"""The Regression rule against the real PostgreSQL, on a controlled clock: a 5x regression from a
2 % baseline (which the runbook's absolute thresholds never see) caught as a warning; its CUSUM
and watermark survive a restart and a failed cycle, without losing or double-counting a bucket."""

from __future__ import annotations

import asyncio
import datetime
import math

import psycopg
import pytest

from selfheal.core.guard import cusum, regression
from selfheal.core.guard.rules import REGRESSION_RULE, GuardSettings
from selfheal.core.guard.spec import settings_for
from selfheal.services.guard_cycle import GuardCycle
from tests.guard import registry_rows
from tests.guard.registry_rows import connect

# The controlled clock: the current hour starts at HOUR; the baseline is the 24 hours before it.
HOUR = datetime.datetime.now(datetime.UTC).replace(minute=0, second=0, microsecond=0)
BASELINE_PER_HOUR = 360  # 0.1 application per second, 2 % failures: 8,640 a day, p0 = 2 %, p1 = 6 %


def at(seconds: float) -> float:
    return HOUR.timestamp() + seconds


@pytest.fixture()
def url(own_database) -> str:
    """A database per test: the watermark is global to a registry and each test has its own clock."""
    return own_database


def new_patch(url: str) -> str:
    patch_id = registry_rows.new_patch(url, prefix="r", description="regression test")
    with connect(url) as conn:
        # 24 h of baseline: 360 an hour, one in fifty failed and rolled back.
        conn.execute(
            """INSERT INTO sdk_patch_applications (patch_id, developer_id, sdk_language, success,
                                                            rollback_triggered, applied_at)
                        SELECT %s, 'dev-1', 'node', i %% 50 <> 0, i %% 50 = 0,
                               %s - interval '24 hours' + i * interval '10 seconds'
                        FROM generate_series(0, 24 * %s - 1) AS i""",
            (patch_id, HOUR, BASELINE_PER_HOUR),
        )
    return patch_id


def regressed_traffic(url: str, patch_id: str, *, start: float, seconds: int) -> None:
    """One application a second from HOUR + start, every tenth failed: 10 %, five times the baseline."""
    with connect(url) as conn:
        conn.execute(
            """INSERT INTO sdk_patch_applications (patch_id, developer_id, sdk_language, success,
                                                            rollback_triggered, applied_at)
                        SELECT %s, 'dev-1', 'node', i %% 10 <> 0, i %% 10 = 0,
                               %s + (%s + i) * interval '1 second'
                        FROM generate_series(0, %s - 1) AS i""",
            (patch_id, HOUR, start, seconds),
        )


def state(url: str, patch_id: str) -> tuple[float, int, int]:
    with connect(url) as conn:
        row = conn.execute(
            """SELECT regression_cusum, regression_total, regression_failures FROM sdk_guard_state
                              WHERE patch_id = %s""",
            (patch_id,),
        ).fetchone()
    return tuple(row) if row else (0.0, 0, 0)


def saved_bank(url: str, patch_id: str) -> list[float]:
    with connect(url) as conn:
        return conn.execute("SELECT regression_bank FROM sdk_guard_state WHERE patch_id = %s", (patch_id,)).fetchone()[
            0
        ]


def watermark(url: str) -> datetime.datetime | None:
    with connect(url) as conn:
        row = conn.execute("SELECT folded_until FROM sdk_guard_watermark").fetchone()
    return row[0] if row else None


def counted_before(url: str, patch_id: str, until: datetime.datetime) -> tuple[int, int]:
    """Applications of the regressed traffic (this hour) that started before `until`, and their failures."""
    with connect(url) as conn:
        return conn.execute(
            """SELECT count(*), count(*) FILTER (WHERE NOT success) FROM sdk_patch_applications
                               WHERE patch_id = %s AND applied_at >= %s AND applied_at < %s""",
            (patch_id, HOUR, until),
        ).fetchone()


class Guard:
    def __init__(self, url: str, settings: GuardSettings) -> None:
        self.url, self.settings = url, settings
        self.cycle = GuardCycle(settings_for=lambda patch: settings)

    def run(self, now: float):
        async def go():
            async with await psycopg.AsyncConnection.connect(self.url) as conn:
                async with conn.transaction():
                    return await self.cycle.run(conn, now=now, windows=self.settings.windows())

        return {d.patch.id: d for d in asyncio.run(go())}


def test_a_5x_regression_is_caught_as_a_warning_and_survives_a_restart(url):
    patch_id = new_patch(url)
    regressed_traffic(url, patch_id, start=60, seconds=900)
    settings = GuardSettings()
    guard = Guard(url, settings)
    assert (
        guard.run(at(30))[patch_id].verdict.state == "Healthy"
    )  # the baseline's last minutes; the watermark starts here
    assert watermark(url) == HOUR + datetime.timedelta(seconds=20)  # 30 s - 10 s to settle, on a 5 s bucket

    # The absolute rules see 10 % failures (under 20 % and 50 %): Healthy. The CUSUM climbs.
    clock, warned = 35.0, None
    while clock < 240:
        decision = guard.run(at(clock))[patch_id]
        assert decision.verdict.action == "none" and decision.verdict.state == "Healthy"
        clock += 5
    before = state(url, patch_id)
    assert before[0] > 0 and (before[1], before[2]) == counted_before(url, patch_id, watermark(url))

    # A cycle whose connection dies saves nothing: neither the CUSUM nor the watermark moves.
    async def broken_cycle():
        async with await psycopg.AsyncConnection.connect(url) as conn:
            with connect(url) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
            with pytest.raises(psycopg.OperationalError):
                await guard.cycle.run(conn, now=at(clock), windows=settings.windows())

    mark = watermark(url)
    asyncio.run(broken_cycle())
    assert (state(url, patch_id), watermark(url)) == (before, mark)

    # A restarted operator (new memory) continues from the saved CUSUM and watermark.
    guard = Guard(url, settings)
    while clock < 900 and warned is None:
        decision = guard.run(at(clock))[patch_id]
        if decision.verdict.action != "none":
            warned = decision
        clock += 5
    assert warned is not None, state(url, patch_id)
    verdict = warned.verdict
    assert (verdict.state, verdict.action) == (f"Warning: {REGRESSION_RULE}", "warn")
    assert [o.rule.name for o in warned.new_warnings] == [REGRESSION_RULE]
    assert "baseline 2.0%" in verdict.message() and "tuned for 6.0%" in verdict.message()
    statistic, total, failures = state(url, patch_id)
    # Every application before the watermark folded in exactly once, across the restart and the failure.
    assert (total, failures) == counted_before(url, patch_id, watermark(url))
    # ... and it fired in the bucket where the highest CUSUM of the bank crossed h = ln(8,640 a day x
    # 10,000) + ln 4 for p0 = 2 % and p1 = 2 % x each ratio; each CUSUM's S saved, in the grid's order.
    h = math.log(24 * BASELINE_PER_HOUR * 10_000) + math.log(4)
    p0 = len(range(0, 24 * BASELINE_PER_HOUR, 50)) / (24 * BASELINE_PER_HOUR)  # 173/8,640
    steps = [cusum.weights(p0, p0 * ratio) for ratio in regression.ratios(settings.regression)]
    bank, crossing = [0.0] * len(steps), None
    for sample in range(total):
        bank = [max(0.0, s + (a if sample % 10 == 0 else b)) for s, (a, b) in zip(bank, steps, strict=True)]
        if max(bank) > h and crossing is None:
            crossing = sample + 1
    assert statistic == pytest.approx(max(bank)) and statistic > h
    assert saved_bank(url, patch_id) == pytest.approx(bank)
    assert crossing is not None and total - 5 < crossing <= total, (crossing, total)
    # Still a warning, not a new one, on the next cycle; the patch stays active.
    again = guard.run(at(clock))[patch_id]
    assert again.verdict.action == "warn" and not again.new_warnings
    with connect(url) as conn:
        assert conn.execute("SELECT active FROM sdk_self_healing_registry WHERE id = %s", (patch_id,)).fetchone()[0]


def test_per_patch_deactivate_switches_a_regressed_patch_off(url):
    patch_id = new_patch(url)
    quiet_id = new_patch(url)  # same baseline, no regression: never touched
    regressed_traffic(url, patch_id, start=60, seconds=900)
    with connect(url) as conn:
        conn.execute(
            """INSERT INTO sdk_patch_applications (patch_id, developer_id, sdk_language, success,
                                                            rollback_triggered, applied_at)
                        SELECT %s, 'dev-1', 'node', i %% 50 <> 0, i %% 50 = 0, %s + (60 + i) * interval '1 second'
                        FROM generate_series(0, 899) AS i""",
            (quiet_id, HOUR),
        )
    settings = settings_for(base=GuardSettings(), spec={"regression": {"deactivate": True}})
    guard = Guard(url, settings)
    clock, fired = 30.0, None
    while clock < 900 and fired is None:
        decisions = guard.run(at(clock))
        assert quiet_id not in decisions or decisions[quiet_id].verdict.action == "none"
        if patch_id in decisions and decisions[patch_id].deactivated is not None:
            fired = decisions[patch_id]
        clock += 5
    assert fired is not None and fired.verdict.state == f"Firing: {REGRESSION_RULE}"
    with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
        row = conn.execute("SELECT * FROM sdk_self_healing_registry WHERE id = %s", (patch_id,)).fetchone()
        audit = conn.execute(
            """SELECT * FROM sdk_patch_audit WHERE patch_id = %s AND action = 'guard'""", (patch_id,)
        ).fetchall()
        quiet = conn.execute("SELECT active FROM sdk_self_healing_registry WHERE id = %s", (quiet_id,)).fetchone()
    assert (row["active"], row["deactivation_reason"]) == (False, "AutoDeactivated")
    assert row["deactivation_message"].startswith(f"guard: {REGRESSION_RULE}: failure rate")
    assert len(audit) == 1 and audit[0]["details"]["rule"] == REGRESSION_RULE
    assert (
        audit[0]["details"]["p0"] == pytest.approx(173 / 8640, abs=1e-6)
        and audit[0]["details"]["cusum"] > audit[0]["details"]["h"]
    )
    assert quiet["active"] is True
    # Deactivated: its CUSUM is reset, and it is judged afresh if it ever comes back.
    assert state(url, patch_id) == (0.0, 0, 0)
