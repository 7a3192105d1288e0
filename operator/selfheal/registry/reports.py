"""The runbook's SQL reports and the figures behind its KPIs and daily checklist.

The runbook's queries come from one file, `runbook_queries.sql`, copied verbatim from the
runbook (a test keeps them equal). Run with their own windows they are sent unchanged. Given a
window or an `as_of` time, only their time bound changes: `x.applied_at > NOW() - INTERVAL '7
days'` becomes `x.applied_at > start AND x.applied_at <= end`, so a report can be computed for
any past period and gives the same figures whenever it is run.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

import psycopg
from psycopg import sql as pgsql

from selfheal.core.reports.kpis import WindowFigures
from selfheal.core.reports.table import Table

_NAME = re.compile(r"^-- name: ([a-z-]+)\s*$", re.M)
_BOUND = re.compile(r"(?P<column>\b(?:\w+\.)?applied_at) > NOW\(\) - INTERVAL '(?P<window>[^']+)'")
_LIMIT = re.compile(r"\bLIMIT (\d+)\s*$")
_HAVING = re.compile(r"HAVING COUNT\(\*\) > (\d+)")


@cache
def runbook_queries() -> dict[str, str]:
    """name → the runbook's query text (its leading comment kept, trailing semicolon dropped)."""
    text = resources.files("selfheal.registry").joinpath("runbook_queries.sql").read_text(encoding="utf-8")
    parts = _NAME.split(text)
    return {name: body.strip().rstrip(";").rstrip() for name, body in zip(parts[1::2], parts[2::2])}


def default_window(name: str) -> datetime.timedelta:
    """The runbook's window for a query: its `INTERVAL '…'` literal."""
    bound = _BOUND.search(runbook_queries()[name])
    assert bound is not None, f"runbook query {name} has no time bound"
    amount, unit = bound.group("window").split()
    return datetime.timedelta(**{unit if unit.endswith("s") else unit + "s": int(amount)})


def default_limit(name: str) -> int | None:
    match = _LIMIT.search(runbook_queries()[name])
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class Period:
    """`(start, end]`; None: the runbook's own `NOW() - INTERVAL` bound."""

    window: datetime.timedelta
    as_of: datetime.datetime | None = None


def render(
    name: str, *, period: Period | None = None, limit: int | None = None, min_applications: int | None = None
) -> tuple[str, dict | None]:
    """The query to send and its parameters; the runbook's exact text when nothing is overridden."""
    query = runbook_queries()[name]
    params: dict = {}
    if period is not None:
        query = _BOUND.sub(lambda m: f"{m['column']} > %(start)s AND {m['column']} <= %(end)s", query)
        params["window"] = period.window
    if limit is not None and limit != default_limit(name):
        query = _LIMIT.sub("LIMIT %(limit)s", query)
        params["limit"] = limit
    having = _HAVING.search(query)
    if min_applications is not None and having and int(having.group(1)) != min_applications:
        query = _HAVING.sub("HAVING COUNT(*) > %(min_applications)s", query)
        params["min_applications"] = min_applications
    return query, (params or None)


def _bind(conn: psycopg.Connection, params: dict | None, period: Period | None) -> dict | None:
    if params is None or period is None:
        return params
    end = period.as_of or _now(conn)
    return {**{k: v for k, v in params.items() if k != "window"}, "start": end - period.window, "end": end}


def _bounds(conn: psycopg.Connection, period: Period) -> tuple[datetime.datetime, datetime.datetime]:
    end = period.as_of or _now(conn)
    return end - period.window, end


def _now(conn: psycopg.Connection) -> datetime.datetime:
    return _one(conn, "SELECT now()")[0]


def _one(conn: psycopg.Connection, query: str, params: dict | None = None) -> tuple:
    """The one row an aggregate query always returns."""
    row = conn.execute(query, params).fetchone()
    assert row is not None, "an aggregate query returned no row"
    return row


def run_report(
    conn: psycopg.Connection,
    name: str,
    *,
    period: Period | None = None,
    limit: int | None = None,
    min_applications: int | None = None,
) -> Table:
    query, params = render(name, period=period, limit=limit, min_applications=min_applications)
    with conn.cursor() as cur:
        cur.execute(query, _bind(conn, params, period))
        return Table(tuple(d.name for d in cur.description or ()), cur.fetchall())


def export_csv(conn: psycopg.Connection, *, period: Period | None = None, write) -> None:
    """The runbook's `COPY (…) TO STDOUT CSV HEADER`: PostgreSQL's own CSV, byte for byte what psql writes."""
    query, params = render("export", period=period)
    if params is not None:
        # COPY takes no bind parameters: psycopg quotes the bounds into the text.
        query = psycopg.ClientCursor(conn).mogrify(query, _bind(conn, params, period))
    with conn.cursor() as cur, cur.copy(pgsql.SQL("COPY ({}) TO STDOUT CSV HEADER").format(pgsql.SQL(query))) as copy:
        for block in copy:
            write(bytes(block))


_FIGURES = """
SELECT count(*),
       count(*) FILTER (WHERE patch_applied),
       count(*) FILTER (WHERE patch_applied AND success),
       count(*) FILTER (WHERE patch_applied AND rollback_triggered),
       count(DISTINCT developer_id)
FROM sdk_patch_applications
WHERE applied_at > %(start)s AND applied_at <= %(end)s
"""

# Developers we know of: those whose SDK reported in the window, and holders of a `developer`
# token that was live at some point of the window.
_DEVELOPERS_KNOWN = """
SELECT count(*) FROM (
    SELECT developer_id FROM sdk_patch_applications WHERE applied_at > %(start)s AND applied_at <= %(end)s
    UNION
    SELECT developer_id FROM selfheal_api_tokens
    WHERE role = 'developer' AND created_at <= %(end)s AND (revoked_at IS NULL OR revoked_at > %(start)s)
) known
"""

# MTTR: for each patch whose first successful application falls in the window, the time since
# the first unpatched occurrence (patch_applied = false) of its error before that success: same
# SDK language, message equal to the signature or starting with it. Patches with no such earlier
# miss (preventive patches, errors from before the registry) are counted but not measured.
_MTTR = """
WITH healed AS (
    SELECT p.id, p.sdk_language, p.error_signature, min(a.applied_at) AS healed_at
    FROM sdk_self_healing_registry p
    JOIN sdk_patch_applications a ON a.patch_id = p.id AND a.patch_applied AND a.success AND a.applied_at <= %(end)s
    GROUP BY p.id, p.sdk_language, p.error_signature
    HAVING min(a.applied_at) > %(start)s
), repairs AS (
    SELECT h.id, h.healed_at,
           (SELECT min(u.applied_at) FROM sdk_patch_applications u
            WHERE NOT u.patch_applied AND u.sdk_language = h.sdk_language
              AND starts_with(u.error_encountered, h.error_signature) AND u.applied_at < h.healed_at) AS broken_since
    FROM healed h
)
SELECT count(*) FILTER (WHERE broken_since IS NOT NULL), count(*),
       extract(epoch FROM avg(healed_at - broken_since))::float8
FROM repairs
"""


def window_figures(conn: psycopg.Connection, period: Period) -> WindowFigures:
    start, end = _bounds(conn, period)
    bounds = {"start": start, "end": end}
    errors, applied, successful, rollbacks, enabled = _one(conn, _FIGURES, bounds)
    known = _one(conn, _DEVELOPERS_KNOWN, bounds)[0]
    measured, fixed, mttr = _one(conn, _MTTR, bounds)
    return WindowFigures(
        errors=errors,
        applied=applied,
        successful=successful,
        rollbacks=rollbacks,
        developers_enabled=enabled,
        developers_known=known,
        repairs_measured=measured,
        patches_fixed=fixed,
        mttr_seconds=mttr,
    )


_BUSY = """
SELECT p.id, p.description, COUNT(*) AS applications
FROM sdk_self_healing_registry p
JOIN sdk_patch_applications a ON p.id = a.patch_id
WHERE a.patch_applied AND a.applied_at > %(start)s AND a.applied_at <= %(end)s
GROUP BY p.id, p.description
HAVING COUNT(*) > %(threshold)s
ORDER BY applications DESC, p.id
"""

# Unpatched error patterns (the runbook's grouping) seen in the window, never before it, and
# still without an active patch of their language whose signature starts the pattern.
_NEW_PATTERNS = """
WITH recent AS (
    SELECT sdk_language, LEFT(error_encountered, 100) AS error_pattern, COUNT(*) AS occurrences
    FROM sdk_patch_applications
    WHERE patch_applied = false AND applied_at > %(start)s AND applied_at <= %(end)s
    GROUP BY sdk_language, LEFT(error_encountered, 100)
)
SELECT r.sdk_language, r.error_pattern, r.occurrences
FROM recent r
WHERE NOT EXISTS (SELECT 1 FROM sdk_patch_applications o
                  WHERE o.patch_applied = false AND o.sdk_language = r.sdk_language
                    AND LEFT(o.error_encountered, 100) IS NOT DISTINCT FROM r.error_pattern
                    AND o.applied_at <= %(start)s)
  AND NOT EXISTS (SELECT 1 FROM sdk_self_healing_registry p
                  WHERE p.active AND p.sdk_language = r.sdk_language
                    AND starts_with(r.error_pattern, p.error_signature))
ORDER BY r.occurrences DESC, r.sdk_language, r.error_pattern
"""


def busy_patches(conn: psycopg.Connection, period: Period, *, threshold: int) -> list[tuple[str, str, int]]:
    start, end = _bounds(conn, period)
    return [tuple(row) for row in conn.execute(_BUSY, {"start": start, "end": end, "threshold": threshold})]


def new_error_patterns(conn: psycopg.Connection, period: Period) -> list[tuple[str, str, int]]:
    start, end = _bounds(conn, period)
    return [tuple(row) for row in conn.execute(_NEW_PATTERNS, {"start": start, "end": end})]
