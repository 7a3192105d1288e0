"""The guard's reads and writes (psycopg 3, async): windows from rollups, pending state, CUSUMs.

The source of truth for every verdict is the Python rules (core/guard/rules.py, evaluated by
core/guard/evaluate.py). The SQL below that pre-judges quiet patches is generated from the same
rule objects (`_quiet_condition`): every threshold, window and minimum comes
from `GuardSettings`, none is written here; tests/guard/test_quiet_sql.py holds the two equal on
edge and random counts.

Rollups are kept by the database itself (0003_guard.sql), so one evaluation cycle reads a few
buckets per patch with recent traffic, whatever the size of the history.
"""

from __future__ import annotations

import datetime
import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row

from selfheal.core.guard.cusum import RESTING, CusumState
from selfheal.core.guard.evaluate import Counts
from selfheal.core.guard.regression import Baseline
from selfheal.core.guard.rules import COARSE_BUCKET_SECONDS, FINE_BUCKET_SECONDS, GuardSettings, bucket_seconds

# A window covers its current (partial) bucket and the window/width - 1 buckets before it; data
# from before `since` (the patch came back) does not count. The recent rollup rows are read once,
# in one pass (one range per bucket width) that sums every window of every patch: ten thousand
# patches with traffic are some 200,000 rows a cycle, and each further pass over them (a first
# glance, one aggregate per width, a join per row) cost more than the sums themselves.
_WINDOWS_SQL = """
WITH counts AS (  -- t_<window>, f_<window>, r_<window>: applications, failures, rollbacks
    SELECT r.patch_id, {sums}
    FROM (SELECT * FROM sdk_patch_rollups WHERE width = {fine} AND bucket >= %(fine_start)s AND bucket <= %(now)s
          UNION ALL
          SELECT * FROM sdk_patch_rollups WHERE width = {coarse} AND bucket >= %(coarse_start)s AND bucket <= %(now)s) r
    -- only the few patches that came back since the oldest bucket read: the others lose no bucket
    LEFT JOIN sdk_guard_state g ON g.patch_id = r.patch_id AND g.since > %(oldest)s
    WHERE g.since IS NULL OR r.bucket >= g.since
    GROUP BY r.patch_id
),
judged AS (
    SELECT p.id, p.source_namespace, p.source_name, p.source_generation, nullif(g.pending, '{{}}') AS pending,
           {columns}, g.since, coalesce(g.regression_cusum, 0) AS regression_cusum,
           coalesce(g.regression_total, 0) AS regression_total,
           coalesce(g.regression_failures, 0) AS regression_failures,
           coalesce(g.regression_alarm, false) AS regression_alarm,
           coalesce(g.regression_bank, '{{}}') AS regression_bank,
           {quiet} AS quiet
    FROM counts c
    JOIN sdk_self_healing_registry p ON p.id = c.patch_id AND p.active
    LEFT JOIN sdk_guard_state g ON g.patch_id = p.id
    UNION ALL  -- pending rules and no traffic left: judged once more, without data
    SELECT p.id, p.source_namespace, p.source_name, p.source_generation, g.pending, {no_columns}, g.since,
           g.regression_cusum, g.regression_total, g.regression_failures, g.regression_alarm, g.regression_bank, NULL
    FROM sdk_guard_state g
    JOIN sdk_self_healing_registry p ON p.id = g.patch_id AND p.active
    WHERE g.pending <> '{{}}'::jsonb AND NOT EXISTS (SELECT 1 FROM counts c WHERE c.patch_id = g.patch_id)
)
-- Patches judged quiet here come back as one row per state, their ids in an array: ten thousand
-- full rows were most of a cycle's cost, and most patches are quiet.
SELECT id, NULL::text[] AS quiet_ids, source_namespace, source_name, source_generation, pending,
       CASE WHEN has_counts THEN ARRAY[{flat}] END, since, regression_cusum, regression_total, regression_failures,
       regression_alarm, regression_bank
FROM judged WHERE quiet IS NULL
UNION ALL
SELECT quiet, array_agg(id), NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
FROM judged WHERE quiet IS NOT NULL GROUP BY quiet
"""


@dataclass(frozen=True)
class QuietFilter:
    """Judge in SQL, with `settings`, the patches no rule can act on (guard/evaluate.py's
    `_quiet_state`, the same comparisons in float8): they come back as Healthy or Inconclusive without their counts. Never quiet:
    a patch with pending rules or a CUSUM off zero, one whose resource (namespace, name) is in
    `custom` (settings of its own), an id in `include`."""

    settings: GuardSettings
    custom: frozenset[tuple[str, str]] = frozenset()
    include: frozenset[str] = frozenset()


@dataclass(frozen=True)
class PatchWindows:
    """One active patch's counts per window and its persisted pending rules."""

    id: str
    namespace: str | None
    name: str | None
    generation: int | None
    pending: dict[str, float]
    windows: dict[int, Counts] = field(default_factory=dict)
    since: datetime.datetime | None = None  # data before it does not count (the patch came back then)
    cusum: CusumState = RESTING  # the Regression rule's CUSUM as last saved


async def read_windows(
    conn: psycopg.AsyncConnection, *, now: datetime.datetime, windows: Iterable[int], quiet: QuietFilter | None = None
) -> tuple[list[PatchWindows], dict[str, str]]:
    """Active patches with traffic in any window or a pending rule, with their counts; and, with a
    `quiet` filter, the patches it judged quiet apart (id -> Healthy or Inconclusive)."""
    windows = tuple(sorted(set(windows)))
    judge = quiet if quiet is not None and quiet.settings.enabled and quiet.settings.windows() <= set(windows) else None
    sql, quiet_params = _windows_query(windows, judge.settings if judge else None)
    at = now.timestamp()
    params = {"now": now, **quiet_params, **{f"start_{w}": _window_start(at, w) for w in windows}}
    fine = [params[f"start_{w}"] for w in windows if bucket_seconds(w) == FINE_BUCKET_SECONDS]
    coarse = [params[f"start_{w}"] for w in windows if bucket_seconds(w) == COARSE_BUCKET_SECONDS]
    later = now + datetime.timedelta(seconds=1)  # an empty range for a width no window uses
    params.update(
        fine_start=min(fine, default=later),
        coarse_start=min(coarse, default=later),
        oldest=min(fine + coarse, default=later),
        include=sorted(judge.include) if judge else [],
        custom=sorted(f"{namespace}/{name}" for namespace, name in judge.custom) if judge else [],
    )
    cursor = conn.cursor()  # plain tuples: ten thousand rows a cycle, no dict per row
    # The newest buckets are always newer than the planner's statistics: it expects one row where
    # there are thousands and joins them by nested loops, where hash joins are far cheaper.
    # Off for this query only (transaction-local, then put back as it was); and room for the sums
    # of ten thousand patches in memory (the default 4 MB spilled them to disk).
    await cursor.execute(
        """SELECT current_setting('enable_nestloop'), current_setting('work_mem'),
                  set_config('enable_nestloop', 'off', true), set_config('work_mem', '32MB', true)"""
    )
    ((nestloop, work_mem, _, _),) = await cursor.fetchall()
    await cursor.execute(sql, params)
    found = await cursor.fetchall()
    await cursor.execute(
        "SELECT set_config('enable_nestloop', %s, true), set_config('work_mem', %s, true)", (nestloop, work_mem)
    )
    rows: list[PatchWindows] = []
    quiet_states: dict[str, str] = {}
    for (
        patch_id,
        quiet_ids,
        namespace,
        name,
        generation,
        pending,
        flat,
        since,
        statistic,
        total,
        failures,
        alarmed,
        bank,
    ) in found:
        if quiet_ids is not None:  # patch_id is the state they share
            quiet_states.update(dict.fromkeys(quiet_ids, str(patch_id)))
            continue
        rows.append(
            PatchWindows(
                id=patch_id,
                namespace=namespace,
                name=name,
                generation=generation,
                pending={k: float(v) for k, v in pending.items()} if pending else {},
                windows=_windows(flat),
                since=since,
                cusum=_state(statistic, total, failures, alarmed, bank) if statistic or total or alarmed else RESTING,
            )
        )
    return rows, quiet_states


def _window_start(at: float, seconds: int) -> datetime.datetime:
    """The first bucket of a window ending now: date_bin(width, now) - (window - width)."""
    width = bucket_seconds(seconds)
    return datetime.datetime.fromtimestamp(at // width * width - (seconds - width), datetime.UTC)


@functools.lru_cache(maxsize=64)
def _windows_query(windows: tuple[int, ...], quiet: GuardSettings | None) -> tuple[str, dict]:
    """The windows query for these windows, judging quiet patches with `quiet` (None: none judged)."""

    sums = ", ".join(
        f"coalesce(sum(r.{column}) FILTER (WHERE r.width = {bucket_seconds(w)} AND r.bucket >= %(start_{w})s), 0)::int8"
        f" AS {column[0]}_{w}"
        for w in windows
        for column in ("total", "failures", "rollbacks")
    )
    # [seconds, total, failures, rollbacks, ...] as one int8[]: much cheaper to read than jsonb
    flat = ", ".join(f"{w}::int8, t_{w}, f_{w}, r_{w}" for w in windows)
    columns = ", ".join(f"c.{column}_{w}" for w in windows for column in "tfr") + ", true AS has_counts"
    no_columns = ", ".join("NULL::int8" for _ in windows for _ in "tfr") + ", false"
    if quiet is None:
        params: dict[str, object] = {}
        condition = "NULL::text"
    else:
        condition, params = _quiet_condition(quiet)
    return _WINDOWS_SQL.format(
        sums=sums,
        flat=flat,
        columns=columns,
        no_columns=no_columns,
        fine=FINE_BUCKET_SECONDS,
        coarse=COARSE_BUCKET_SECONDS,
        quiet=condition,
    ), params


# Never quiet, whatever the counts: pending rules, a CUSUM off zero, an id the cycle asks for, a
# resource with settings of its own. Over judged's columns (p: registry, g: guard state).
_JUDGED_IN_SQL = """(g.pending IS NULL OR g.pending = '{}'::jsonb)
          AND coalesce(g.regression_cusum, 0) = 0 AND NOT coalesce(g.regression_alarm, false)
          AND p.id <> ALL(%(include)s::text[])
          AND NOT coalesce(p.source_namespace || '/' || p.source_name = ANY(%(custom)s::text[]), false)"""


def _quiet_condition(settings: GuardSettings) -> tuple[str, dict]:
    """SQL for evaluate._quiet_state over the counts' columns: 'Healthy', 'Inconclusive' or NULL (judge in Python)."""

    def total(w: int) -> str:
        return f"c.t_{w}::float8"

    def rate_above(w: int, metric: str, threshold: str) -> str:
        # SQL does not promise to evaluate AND left to right: no division by a zero total, ever.
        events = f"c.{'f' if metric == 'failure' else 'r'}_{w}::float8"
        return f"coalesce({events} / nullif({total(w)}, 0) > {threshold}, false)"

    params: dict[str, object] = {
        "min_samples": float(settings.min_samples),
        "early_min_samples": float(max(settings.early_min_samples, settings.min_samples)),
    }
    alarms, conclusive = [], []
    for index, rule in enumerate(settings.rules):
        threshold = f"%(threshold_{index})s::float8"
        params[f"threshold_{index}"] = float(rule.threshold)
        w = rule.window_seconds
        if rule.metric == "volume":
            alarms.append(f"{total(w)} * 60.0::float8 / {float(w)!r}::float8 > {threshold}")
            continue
        conclusive.append(f"{total(w)} >= %(min_samples)s::float8")
        alarms.append(f"({total(w)} >= %(min_samples)s::float8 AND {rate_above(w, rule.metric, threshold)})")
        if rule.action == "deactivate" and settings.early_cutoff:
            alarms.extend(
                f"({total(e)} >= %(early_min_samples)s::float8 AND {rate_above(e, rule.metric, threshold)})"
                for e in settings.early_windows_seconds
            )
    state = f"CASE WHEN {' OR '.join(conclusive)} THEN 'Healthy' ELSE 'Inconclusive' END" if conclusive else "'Healthy'"
    return f"CASE WHEN {_JUDGED_IN_SQL} AND NOT ({' OR '.join(alarms) or 'false'}) THEN {state} END", params


def _windows(flat: list[int] | None) -> dict[int, Counts]:
    if not flat:
        return {}
    return {flat[i]: Counts(flat[i + 1], flat[i + 2], flat[i + 3]) for i in range(0, len(flat), 4)}


def _state(statistic: float, total: int, failures: int, alarmed: bool, bank: list[float] | None) -> CusumState:
    """The saved CUSUM; a bank beside a zero statistic is stale (the reset trigger and a
    deactivation zero regression_cusum only) and is dropped."""
    kept = tuple(float(s) for s in bank) if bank and statistic else ()
    return CusumState(float(statistic), int(total), int(failures), bool(alarmed), kept)


def _cusum(row: Mapping[str, Any]) -> CusumState:
    return _state(
        row["regression_cusum"],
        row["regression_total"],
        row["regression_failures"],
        row["regression_alarm"],
        row["regression_bank"],
    )


# ---------------------------------------------------------------------------------- Regression rule
@dataclass(frozen=True)
class NewBuckets:
    """One active patch's 5-second buckets completed since the watermark, oldest first."""

    patch: PatchWindows  # identity, `since` and CUSUM (no windows)
    buckets: list[tuple[int, int]]  # (total, failures)


async def read_watermark(conn: psycopg.AsyncConnection) -> datetime.datetime | None:
    """Where folding 5-second buckets into the CUSUMs stopped (None: never started)."""
    cursor = await conn.execute("SELECT folded_until FROM sdk_guard_watermark")
    row = await cursor.fetchone()
    return row[0] if row else None


async def read_new_buckets(
    conn: psycopg.AsyncConnection, *, start: datetime.datetime, until: datetime.datetime
) -> list[NewBuckets]:
    """The 5-second buckets in [start, until) of every active patch (one range scan of the rollups)."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        f"""SELECT p.id, p.source_namespace, p.source_name, p.source_generation, g.since,
                   coalesce(g.regression_cusum, 0) AS regression_cusum,
                   coalesce(g.regression_total, 0) AS regression_total,
                   coalesce(g.regression_failures, 0) AS regression_failures,
                   coalesce(g.regression_alarm, false) AS regression_alarm,
                   coalesce(g.regression_bank, '{{}}') AS regression_bank,
                   array_agg(r.total ORDER BY r.bucket) AS totals,
                   array_agg(r.failures ORDER BY r.bucket) AS failures
            FROM sdk_patch_rollups r
            JOIN sdk_self_healing_registry p ON p.id = r.patch_id AND p.active
            LEFT JOIN sdk_guard_state g ON g.patch_id = r.patch_id
            WHERE r.width = {FINE_BUCKET_SECONDS} AND r.bucket >= %(start)s AND r.bucket < %(until)s
              AND (g.since IS NULL OR r.bucket >= g.since)
            GROUP BY p.id, g.patch_id""",
        {"start": start, "until": until},
    )
    return [
        NewBuckets(
            PatchWindows(
                id=row["id"],
                namespace=row["source_namespace"],
                name=row["source_name"],
                generation=row["source_generation"],
                pending={},
                since=row["since"],
                cusum=_cusum(row),
            ),
            list(zip(row["totals"], row["failures"], strict=True)),  # int8[]: no JSON built nor parsed
        )
        for row in await cursor.fetchall()
    ]


async def read_baselines(
    conn: psycopg.AsyncConnection, *, now: datetime.datetime, ids: Iterable[str]
) -> dict[str, Baseline]:
    """Each patch's applications over the 24 hours before the current hour (hourly rollups, whole
    hours after `since` only); patches without any are absent."""
    cursor = await conn.execute(
        """SELECT r.patch_id, sum(r.total), sum(r.failures),
                  extract(epoch FROM date_bin('1 hour', %(now)s, timestamptz 'epoch') - min(r.bucket)) / 3600
           FROM sdk_patch_rollups r
           LEFT JOIN sdk_guard_state g ON g.patch_id = r.patch_id
           WHERE r.width = 3600 AND r.patch_id = ANY(%(ids)s)
             AND r.bucket >= date_bin('1 hour', %(now)s, timestamptz 'epoch') - interval '24 hours'
             AND r.bucket < date_bin('1 hour', %(now)s, timestamptz 'epoch')
             AND (g.since IS NULL OR r.bucket >= g.since)
           GROUP BY r.patch_id""",
        {"now": now, "ids": list(ids)},
    )
    return {patch_id: Baseline(int(t), int(f), float(hours)) for patch_id, t, f, hours in await cursor.fetchall()}


async def save_regression(
    conn: psycopg.AsyncConnection, *, changes: Mapping[str, CusumState], folded_until: datetime.datetime
) -> None:
    """The CUSUMs that changed and the watermark they are complete up to, in one transaction:
    a bucket is in the saved CUSUMs exactly when it starts before the saved watermark."""
    async with conn.transaction():
        if changes:
            ids = list(changes)
            await conn.execute(
                """INSERT INTO sdk_guard_state AS g (patch_id, regression_cusum, regression_total, regression_failures,
                                                     regression_alarm, regression_bank)
                   SELECT id, s, n, f, a, CASE WHEN b = '' THEN '{}' ELSE string_to_array(b, ',')::float8[] END
                   FROM unnest(%s::text[], %s::float8[], %s::bigint[], %s::bigint[], %s::bool[], %s::text[])
                        AS c (id, s, n, f, a, b)
                   WHERE EXISTS (SELECT 1 FROM sdk_self_healing_registry p WHERE p.id = c.id)
                   ON CONFLICT (patch_id) DO UPDATE SET regression_cusum = excluded.regression_cusum,
                       regression_total = excluded.regression_total, regression_failures = excluded.regression_failures,
                       regression_alarm = excluded.regression_alarm, regression_bank = excluded.regression_bank,
                       updated_at = now()""",
                (
                    ids,
                    [changes[i].statistic for i in ids],
                    [changes[i].total for i in ids],
                    [changes[i].failures for i in ids],
                    [changes[i].alarmed for i in ids],
                    # unnest flattens a 2-D array: each bank travels as one text, repr() keeps every bit
                    [",".join(repr(s) for s in changes[i].bank) for i in ids],
                ),
            )
        await conn.execute(
            """INSERT INTO sdk_guard_watermark (singleton, folded_until) VALUES (true, %s)
               ON CONFLICT (singleton) DO UPDATE SET folded_until = excluded.folded_until, updated_at = now()""",
            (folded_until,),
        )


async def save_pending(conn: psycopg.AsyncConnection, *, changes: Mapping[str, dict[str, float]]) -> None:
    """Persist pending rules that changed (patch id -> rule -> pending since), in one statement."""
    if not changes:
        return
    ids = list(changes)
    await conn.execute(
        """INSERT INTO sdk_guard_state AS g (patch_id, pending)
           SELECT id, pending FROM unnest(%s::text[], %s::jsonb[]) AS c (id, pending)
           WHERE EXISTS (SELECT 1 FROM sdk_self_healing_registry p WHERE p.id = c.id)
           ON CONFLICT (patch_id) DO UPDATE SET pending = excluded.pending, updated_at = now()""",
        (ids, [json.dumps(changes[i]) for i in ids]),
    )


async def figures_24h(conn: psycopg.AsyncConnection, *, now: datetime.datetime) -> dict[str, Counts]:
    """Applications of the last 24 hours per patch (hourly rollups: the current hour and the 23 before)."""
    hour = _hour(now)
    return await _hourly_sums(conn, start=hour - datetime.timedelta(hours=23), end=now)


class DayFigures:
    """`figures_24h` for a loop that asks every few seconds: the 22 hours before the previous one
    are summed once an hour (ten thousand patches are 220,000 hourly rows), the previous and the
    current hour on every call. A row written by SQL into one of those 22 hours counts from the
    next hour on (the API takes no report more than 15 minutes old)."""

    def __init__(self) -> None:
        self._hour: datetime.datetime | None = None
        self._settled: dict[str, Counts] = {}

    async def read(self, conn: psycopg.AsyncConnection, *, now: datetime.datetime) -> dict[str, Counts]:
        hour = _hour(now)
        previous = hour - datetime.timedelta(hours=1)
        if self._hour != hour:
            start = hour - datetime.timedelta(hours=23)
            self._settled = await _hourly_sums(conn, start=start, end=previous, end_inclusive=False)
            self._hour = hour
        day = dict(self._settled)
        for patch_id, live in (await _hourly_sums(conn, start=previous, end=now)).items():
            settled = day.get(patch_id)
            day[patch_id] = (
                live
                if settled is None
                else Counts(
                    settled.total + live.total, settled.failures + live.failures, settled.rollbacks + live.rollbacks
                )
            )
        return day


def _hour(now: datetime.datetime) -> datetime.datetime:
    at = now.timestamp()
    return datetime.datetime.fromtimestamp(at // 3600 * 3600, datetime.UTC)


async def _hourly_sums(
    conn: psycopg.AsyncConnection, *, start: datetime.datetime, end: datetime.datetime, end_inclusive: bool = True
) -> dict[str, Counts]:
    cursor = conn.cursor()
    # The planner's statistics of `bucket` are mostly 5-second rows, all recent: it expects the last
    # hours of hourly rows to be a quarter of the table and reads all of it, where the primary
    # key's range holds exactly them. Off for this query only (transaction-local, then put back).
    await cursor.execute("SELECT current_setting('enable_seqscan'), set_config('enable_seqscan', 'off', true)")
    ((seqscan, _),) = await cursor.fetchall()
    await cursor.execute(
        f"""SELECT patch_id, sum(total), sum(failures), sum(rollbacks) FROM sdk_patch_rollups
            WHERE width = 3600 AND bucket >= %(start)s AND bucket {"<=" if end_inclusive else "<"} %(end)s
            GROUP BY patch_id""",
        {"start": start, "end": end},
    )
    found = await cursor.fetchall()
    await cursor.execute("SELECT set_config('enable_seqscan', %s, true)", (seqscan,))
    return {patch_id: Counts(int(t), int(f), int(r)) for patch_id, t, f, r in found}


async def maintain(
    conn: psycopg.AsyncConnection, *, now: datetime.datetime, days_ahead: int, retention_days: int
) -> tuple[int, int]:
    """Create daily partitions ahead, drop those past retention (0: keep all), prune old rollups."""
    today = now.astimezone(datetime.UTC).date()
    async with conn.transaction():
        created = await _scalar(
            conn,
            "SELECT selfheal_ensure_application_partitions(%s, %s)",
            (today, today + datetime.timedelta(days=days_ahead)),
        )
        dropped = 0
        if retention_days > 0:
            cutoff = today - datetime.timedelta(days=retention_days)
            dropped = await _scalar(conn, "SELECT selfheal_drop_application_partitions(%s)", (cutoff,))
            await conn.execute("DELETE FROM sdk_patch_rollups WHERE width = 3600 AND bucket < %s", (cutoff,))
        # Short buckets only serve the guard's windows (at most an hour).
        await conn.execute(
            """DELETE FROM sdk_patch_rollups WHERE (width = 5 AND bucket < %(now)s - interval '2 hours')
                                                 OR (width = 60 AND bucket < %(now)s - interval '2 days')""",
            {"now": now},
        )
    return created, dropped


async def _scalar(conn: psycopg.AsyncConnection, query: str, params: tuple[object, ...]) -> Any:
    """The value of a query that always returns one row of one column (a function call)."""
    row = await (await conn.execute(query, params)).fetchone()
    assert row is not None
    return row[0]
