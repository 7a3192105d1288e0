"""The guard against the real PostgreSQL: rollups from every writer, verdicts on a controlled clock."""

from __future__ import annotations

import asyncio
import datetime
import random

import psycopg
import pytest

from selfheal.core.guard.rules import GuardSettings
from selfheal.registry import activation, guard_store
from selfheal.services.guard_cycle import GuardCycle
from tests.guard import registry_rows
from tests.guard.registry_rows import connect

NO_EARLY = GuardSettings(early_cutoff=False)
# The controlled clock starts on a minute boundary a little before the real time, so rows land
# in today's partition and every window is exactly where the test puts it.
T0 = (datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=30)).replace(second=0, microsecond=0)


def at(seconds: float) -> float:
    return T0.timestamp() + seconds


def new_patch(url: str) -> str:
    return registry_rows.new_patch(url, prefix="g", description="guard test")


def add_rows(
    url: str, patch_id: str, *, start: float, seconds: float, per_second: float, rollback_share: float, seed: int = 1
) -> None:
    """Applications spread evenly over [start, start + seconds), the given share failed and rolled back."""
    count = int(seconds * per_second)
    rng = random.Random(seed)
    rows = []
    for index in range(count):
        bad = rng.random() < rollback_share
        applied = T0 + datetime.timedelta(seconds=start + index / per_second)
        rows.append((patch_id, "dev-1", "node", "ECONNREFUSED", not bad, bad, applied))
    with connect(url) as conn, conn.cursor() as cursor:
        with cursor.copy(
            "COPY sdk_patch_applications (patch_id, developer_id, sdk_language, error_encountered,"
            " success, rollback_triggered, applied_at) FROM STDIN"
        ) as copy:
            for row in rows:
                copy.write_row(row)


def registry_row(url: str, patch_id: str) -> dict:
    with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute("SELECT * FROM sdk_self_healing_registry WHERE id = %s", (patch_id,)).fetchone()


def pending_in_db(url: str, patch_id: str) -> dict:
    with connect(url) as conn:
        row = conn.execute("SELECT pending FROM sdk_guard_state WHERE patch_id = %s", (patch_id,)).fetchone()
    return row[0] if row else {}


class Guard:
    """GuardCycle on a controlled clock, each cycle on its own connection like the operator's loop."""

    def __init__(self, url: str, settings: GuardSettings) -> None:
        self.url, self.settings = url, settings
        self.cycle = GuardCycle(settings_for=lambda patch: settings)

    def run(self, now: float, *, conn: psycopg.AsyncConnection | None = None):
        async def go():
            if conn is not None:
                return await self.cycle.run(conn, now=now, windows=self.settings.windows())
            async with await psycopg.AsyncConnection.connect(self.url) as fresh:
                async with fresh.transaction():
                    return await self.cycle.run(fresh, now=now, windows=self.settings.windows())

        return {d.patch.id: d for d in asyncio.run(go())}


@pytest.fixture()
def url(own_database) -> str:
    """A database per test: a cycle judges every patch of the registry, so another test's patches
    (switched off or not, on another clock) would be judged and could be switched off here."""
    return own_database


def test_rollups_follow_every_writer(url):
    patch_id = new_patch(url)
    add_rows(url, patch_id, start=0, seconds=60, per_second=2, rollback_share=0.25)  # COPY
    with connect(url) as conn:
        conn.execute(
            """INSERT INTO sdk_patch_applications (patch_id, developer_id, sdk_language, success,
                                                            rollback_triggered, applied_at)
                        VALUES (%s, 'dev-2', 'python', false, true, %s)""",
            (patch_id, T0),
        )
        conn.execute(
            "UPDATE sdk_patch_applications SET success = true WHERE patch_id = %s AND applied_at < %s",
            (patch_id, T0 + datetime.timedelta(seconds=10)),
        )
        conn.execute(
            "DELETE FROM sdk_patch_applications WHERE patch_id = %s AND applied_at >= %s",
            (patch_id, T0 + datetime.timedelta(seconds=50)),
        )
        raw = conn.execute(
            """SELECT count(*), count(*) FILTER (WHERE NOT success), count(*) FILTER (WHERE rollback_triggered)
                              FROM sdk_patch_applications WHERE patch_id = %s""",
            (patch_id,),
        ).fetchone()
        for width in (5, 60, 3600):
            rolled = conn.execute(
                """SELECT sum(total), sum(failures), sum(rollbacks) FROM sdk_patch_rollups
                                     WHERE patch_id = %s AND width = %s""",
                (patch_id, width),
            ).fetchone()
            assert tuple(int(v) for v in rolled) == raw, width
        assert (
            conn.execute(
                "SELECT count(*) FROM sdk_patch_rollups WHERE width = 5 AND patch_id = %s", (patch_id,)
            ).fetchone()[0]
            == 12
        )


def test_pending_then_firing_exactly_at_for_and_reset(url):
    patch_id = new_patch(url)
    # 30 % rollbacks at 1 per second from T0 for 20 minutes: the 5-minute rule holds throughout.
    add_rows(url, patch_id, start=0, seconds=1200, per_second=1, rollback_share=0.3)
    guard = Guard(url, NO_EARLY)
    first = guard.run(at(300))[patch_id].verdict
    assert first.state == "Pending: HighRollbackRate"
    assert pending_in_db(url, patch_id) == {"HighRollbackRate": at(300)}
    assert guard.run(at(899.9))[patch_id].verdict.action == "none"
    # A restarted operator (new memory) continues from the persisted pending time.
    fired = Guard(url, NO_EARLY).run(at(900))[patch_id]
    assert fired.verdict.action == "deactivate" and fired.deactivated is not None
    row = registry_row(url, patch_id)
    assert (row["active"], row["deactivation_reason"]) == (False, "AutoDeactivated")
    assert "HighRollbackRate" in row["deactivation_message"] and "held for 600s" in row["deactivation_message"]
    with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
        audit = conn.execute("SELECT * FROM sdk_patch_audit WHERE patch_id = %s ORDER BY id", (patch_id,)).fetchall()
    guard_rows = [a for a in audit if a["action"] == "guard"]
    assert len(guard_rows) == 1 and guard_rows[0]["details"]["rule"] == "HighRollbackRate"
    assert guard_rows[0]["details"]["window_seconds"] == 300 and guard_rows[0]["details"]["total"] >= 240
    assert [a["action"] for a in audit][-2:] == ["deactivate", "guard"]
    # Deactivated patches are no longer evaluated.
    assert patch_id not in Guard(url, NO_EARLY).run(at(1000))


def test_one_good_evaluation_resets_pending_in_the_database(url):
    patch_id = new_patch(url)
    add_rows(url, patch_id, start=0, seconds=300, per_second=1, rollback_share=0.3, seed=2)
    add_rows(url, patch_id, start=300, seconds=300, per_second=1, rollback_share=0.02, seed=3)
    add_rows(url, patch_id, start=600, seconds=600, per_second=1, rollback_share=0.3, seed=4)
    guard = Guard(url, NO_EARLY)
    assert guard.run(at(299))[patch_id].verdict.state == "Pending: HighRollbackRate"
    assert guard.run(at(599))[patch_id].verdict.state == "Healthy"
    assert pending_in_db(url, patch_id) == {}
    assert guard.run(at(1199))[patch_id].verdict.state == "Pending: HighRollbackRate"
    assert registry_row(url, patch_id)["active"] is True


def test_minimum_samples_and_no_data_are_inconclusive(url):
    patch_id = new_patch(url)
    # 2 rollbacks out of 5 calls, and then nothing.
    add_rows(url, patch_id, start=0, seconds=5, per_second=1, rollback_share=0.0)
    with connect(url) as conn:
        conn.execute(
            """UPDATE sdk_patch_applications SET success = false, rollback_triggered = true
                        WHERE id IN (SELECT id FROM sdk_patch_applications WHERE patch_id = %s LIMIT 2)""",
            (patch_id,),
        )
    guard = Guard(url, GuardSettings())
    states = []
    for second in range(5, 3600, 30):
        decision = guard.run(at(second)).get(patch_id)  # None once its traffic is out of every window
        if decision is not None:
            states.append(decision.verdict.state)
    assert states and set(states) == {"Inconclusive"}, states  # judged, and never more than inconclusive
    assert registry_row(url, patch_id)["active"] is True


def test_early_cutoff_fires_on_a_clearly_broken_patch_within_seconds(url):
    patch_id = new_patch(url)
    add_rows(url, patch_id, start=0, seconds=600, per_second=10, rollback_share=0.01, seed=5)  # healthy
    guard = Guard(url, GuardSettings())
    fired_at, clock = None, 600.0
    while fired_at is None and clock < 660:
        # The patch turns bad at T0 + 600 s: 50 % rollbacks at 10 per second, arriving as time goes.
        add_rows(url, patch_id, start=clock, seconds=0.5, per_second=10, rollback_share=0.5, seed=int(clock * 10))
        clock += 0.5
        decision = guard.run(at(clock)).get(patch_id)
        if decision and decision.deactivated:
            fired_at = clock
    assert fired_at is not None and 600 < fired_at <= 610, fired_at
    assert "early cut-off" in registry_row(url, patch_id)["deactivation_message"]


def test_healthy_but_noisy_traffic_never_deactivates(url):
    patch_ids = [new_patch(url) for _ in range(3)]
    for seed, (patch_id, rate) in enumerate(zip(patch_ids, (0.5, 3, 20))):
        add_rows(url, patch_id, start=0, seconds=1800, per_second=rate, rollback_share=0.10, seed=10 + seed)
    guard = Guard(url, GuardSettings())
    judged = set()
    for second in range(0, 1800, 5):
        decisions = guard.run(at(second))
        assert not any(d.deactivated for d in decisions.values())
        judged |= {p for p, d in decisions.items() if d.verdict.state != "Inconclusive"}
    assert judged == set(patch_ids)  # each one was judged on enough samples, not just skipped
    assert all(registry_row(url, p)["active"] for p in patch_ids)


def test_database_failure_mid_cycle_gives_no_verdict_and_loses_nothing(url):
    patch_id = new_patch(url)
    add_rows(url, patch_id, start=0, seconds=1200, per_second=1, rollback_share=0.3, seed=7)
    guard = Guard(url, NO_EARLY)
    guard.run(at(300))
    assert pending_in_db(url, patch_id) == {"HighRollbackRate": at(300)}

    async def broken_cycle():
        async with await psycopg.AsyncConnection.connect(url) as conn:
            pid = conn.info.backend_pid
            with connect(url) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            with pytest.raises(psycopg.OperationalError):
                await guard.cycle.run(conn, now=at(900), windows=NO_EARLY.windows())

    asyncio.run(broken_cycle())
    assert registry_row(url, patch_id)["active"] is True
    assert pending_in_db(url, patch_id) == {"HighRollbackRate": at(300)}
    assert guard.run(at(901))[patch_id].deactivated is not None


def test_a_patch_brought_back_starts_afresh(url):
    patch_id = new_patch(url)
    add_rows(url, patch_id, start=0, seconds=60, per_second=10, rollback_share=0.6, seed=8)
    guard = Guard(url, GuardSettings())
    assert guard.run(at(30))[patch_id].deactivated is not None
    # The runbook's "Corriger et réactiver": plain SQL. Old evidence no longer counts.
    with connect(url) as conn:
        conn.execute(
            "UPDATE sdk_self_healing_registry SET active = true, updated_at = now() WHERE id = %s", (patch_id,)
        )
    since = T0 + datetime.timedelta(seconds=60)
    with connect(url) as conn:  # the trigger stamped `since` with the real time; move it onto the test clock
        conn.execute("UPDATE sdk_guard_state SET since = %s WHERE patch_id = %s", (since, patch_id))
    add_rows(url, patch_id, start=60, seconds=60, per_second=1, rollback_share=0.02, seed=9)
    decision = guard.run(at(119)).get(patch_id)
    assert decision.verdict.state == "Healthy" and decision.patch.windows[300].total <= 60  # only what came after
    assert registry_row(url, patch_id)["active"] is True


def test_reactivation_token_is_used_once(url):
    patch_id = new_patch(url)

    async def go():
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            off = await activation.deactivate(
                conn,
                patch_id=patch_id,
                reason="ManualKillSwitch",
                actor="test",
                message="incident",
                details={"reason": "incident"},
            )
            back = await activation.reactivate(conn, patch_id=patch_id, actor="test", token="t1")
            await activation.deactivate(
                conn, patch_id=patch_id, reason="AutoDeactivated", actor="test", message="again", details={}
            )
            again = await activation.reactivate(conn, patch_id=patch_id, actor="test", token="t1")
            return off, back, again

    off, back, again = asyncio.run(go())
    assert off is not None and back is True and again is False
    assert registry_row(url, patch_id)["deactivation_reason"] == "AutoDeactivated"


def test_partitions_are_created_ahead_and_dropped_by_day(url):
    async def go():
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            return await guard_store.maintain(
                conn, now=datetime.datetime.now(datetime.UTC), days_ahead=10, retention_days=0
            )

    created, dropped = asyncio.run(go())
    assert dropped == 0 and created >= 1
    with connect(url) as conn:
        old_day = datetime.date.today() - datetime.timedelta(days=200)
        conn.execute("SELECT selfheal_ensure_application_partitions(%s, %s)", (old_day, old_day))
        name = f"sdk_patch_applications_p{old_day:%Y%m%d}"
        assert conn.execute("SELECT to_regclass(%s)", (name,)).fetchone()[0] is not None
        assert (
            conn.execute(
                "SELECT selfheal_drop_application_partitions(%s)", (old_day + datetime.timedelta(days=1),)
            ).fetchone()[0]
            == 1
        )
        assert conn.execute("SELECT to_regclass(%s)", (name,)).fetchone()[0] is None
