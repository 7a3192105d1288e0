"""The windows query's quiet judgment (SQL) against the guard's evaluation (Python), on the real
PostgreSQL: every patch gets the same state either way, and every patch a rule can act on comes
back to Python in full. Counts sit on the thresholds' edges (a rate exactly at its threshold, one
application short of the minimum samples, the volume limit exactly) and around them at random."""

from __future__ import annotations

import asyncio
import datetime
import random

import psycopg

from selfheal.core.guard.evaluate import _quiet_state
from selfheal.core.guard.rules import GuardSettings
from selfheal.services.guard_cycle import GuardCycle
from tests.guard import registry_rows
from tests.guard.registry_rows import connect

SETTINGS = GuardSettings()
# A minute boundary a little before the real time (rows land in today's partition); `now` is 2.5 s
# into a 5-second bucket, so each window's buckets are exactly the ones written below.
NOW = (datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=20)).replace(
    second=0, microsecond=0
) + datetime.timedelta(seconds=2.5)

# Seconds before NOW where a bucket's rows go: in the current 5 s bucket, 10 s back (in the 15 s
# window, not the 5 s one), 40 s back (60 s window only), 3 and 8 minutes back (300 and 600 s).
OFFSETS = (1.0, 10.0, 40.0, 180.0, 480.0)
EDGES = [  # (total, failed, rolled back) per offset
    {480.0: (25, 0, 5)},
    {480.0: (25, 0, 6)},  # rollback rate exactly 20 % / just above, outside 300 s
    {180.0: (25, 0, 5)},
    {180.0: (25, 0, 6)},  # the same inside the 300 s window
    {180.0: (19, 0, 19)},
    {180.0: (20, 0, 20)},  # one short of min samples / at it
    {480.0: (20, 10, 0)},
    {480.0: (20, 11, 0)},  # failure rate exactly 50 % / above
    {180.0: (500, 0, 0)},
    {180.0: (501, 0, 0)},  # 100 / min over 300 s exactly / above
    {1.0: (1, 0, 1)},
    {10.0: (3, 2, 0)},
    {40.0: (9, 1, 2)},  # early windows: tiny samples, high rates
    {1.0: (1, 0, 0), 480.0: (30, 1, 1)},  # healthy, conclusive
    {40.0: (2, 0, 0)},  # inconclusive
    {1.0: (1, 0, 1), 10.0: (10, 0, 0)},  # only the 5 s window's rate is above
    {10.0: (2, 0, 2), 40.0: (20, 0, 0)},  # only the 15 s window's
    {40.0: (3, 0, 3), 180.0: (100, 0, 0)},  # only the 60 s window's
    {40.0: (29, 0, 29), 180.0: (100, 0, 0)},
    {40.0: (30, 0, 30), 180.0: (100, 0, 0)},  # one short of the early cut-off's minimum samples / at it
    {40.0: (30, 0, 6), 180.0: (100, 0, 0)},
    {40.0: (30, 0, 7), 180.0: (100, 0, 0)},  # at the minimum: rollback rate exactly 20 % / above
]


def traffic(rng: random.Random) -> dict[float, tuple[int, int, int]]:
    counts = {}
    for offset in rng.sample(OFFSETS, rng.randint(1, len(OFFSETS))):
        total = rng.choice((1, 2, 5, 19, 20, 21, 40, 100, 499, 501))
        failed = min(total, int(total * rng.choice((0, 0.01, 0.1, 0.2, 0.5, 0.51, 1)) + rng.choice((0, 0, 1))))
        counts[offset] = (total, failed, min(failed, int(total * rng.choice((0, 0.2, 0.21, 0.5)))))
    return counts


def write(url: str, plan: dict[str, dict[float, tuple[int, int, int]]]) -> None:
    rows = []
    for patch_id, buckets in plan.items():
        for offset, (total, failed, rolled_back) in buckets.items():
            applied = NOW - datetime.timedelta(seconds=offset)
            rows += [
                (patch_id, "dev-quiet", "node", index >= failed, index < rolled_back, applied) for index in range(total)
            ]
    with (
        connect(url) as conn,
        conn.cursor().copy(
            "COPY sdk_patch_applications (patch_id, developer_id, sdk_language, success, rollback_triggered,"
            " applied_at) FROM STDIN"
        ) as copy,
    ):
        for row in rows:
            copy.write_row(row)


def judged(url: str, *, in_sql: bool, custom: frozenset = frozenset()) -> tuple[dict[str, str], dict]:
    """Every patch's state after one cycle at NOW, and the decisions of those evaluated in full; nothing kept."""
    cycle = GuardCycle(settings_for=lambda patch: SETTINGS)

    async def go():
        async with await psycopg.AsyncConnection.connect(url) as conn:
            async with conn.transaction(force_rollback=True):
                return await cycle.run(
                    conn,
                    now=NOW.timestamp(),
                    windows=SETTINGS.windows(),
                    default_settings=SETTINGS if in_sql else None,
                    custom=custom,
                )

    decisions = asyncio.run(go())
    states = {pid: verdict.state for pid, verdict in cycle.verdicts.items()}
    states.update((d.patch.id, d.verdict.state) for d in decisions)
    return states, {d.patch.id: d for d in decisions}


def test_sql_and_python_judge_every_patch_alike_and_hand_back_every_patch_a_rule_can_act_on(own_database):
    # Its own database: "every patch" below means this test's patches, none left by another.
    url, rng = own_database, random.Random(20261125)
    plan = {
        registry_rows.new_patch(url, prefix="q", description="quiet sql"): buckets
        for buckets in EDGES + [traffic(rng) for _ in range(300)]
    }
    write(url, plan)

    in_python, evaluated = judged(url, in_sql=False)
    in_sql, full = judged(url, in_sql=True)

    assert set(in_python) == set(plan)
    assert in_sql == in_python
    # Handed back exactly when Python's own shortcut would not call it quiet: none missed, none extra.
    assert set(full) == {pid for pid, d in evaluated.items() if _quiet_state(SETTINGS, d.patch.windows) is None}
    states = set(in_python.values())
    assert {"Healthy", "Inconclusive"} <= states and any(s.startswith(("Pending", "Firing", "Warning")) for s in states)
    assert len(plan) - len(full) >= 50, "quiet patches are judged in SQL, not handed back"


def test_patches_with_settings_of_their_own_pending_rules_or_a_moving_cusum_come_back_in_full(own_database):
    url = own_database
    quiet = {registry_rows.new_patch(url, prefix="q", description="quiet sql"): {480.0: (30, 0, 0)} for _ in range(4)}
    write(url, quiet)
    custom, pending, cusum, plain = quiet
    with connect(url) as conn:
        conn.execute(
            "UPDATE sdk_self_healing_registry SET source_namespace = 'team', source_name = 'own' WHERE id = %s",
            (custom,),
        )
        conn.execute(
            """INSERT INTO sdk_guard_state (patch_id, pending) VALUES (%s, '{"HighRollbackRate": 1}')""", (pending,)
        )
        conn.execute("INSERT INTO sdk_guard_state (patch_id, regression_cusum) VALUES (%s, 0.5)", (cusum,))

    _, full = judged(url, in_sql=True, custom=frozenset({("team", "own")}))
    assert set(full) & set(quiet) == {custom, pending, cusum}
    _, full = judged(url, in_sql=True)
    assert set(full) & set(quiet) == {pending, cusum} and plain not in full
