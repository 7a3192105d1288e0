"""Guard benchmark: cycle cost at large row counts, seconds to deactivation, false-deactivation simulation.

  cycle      One evaluation cycle (guard_cycle.GuardCycle.run) against N application rows spread
             over 30 days and P patches, with the same-run baselines: a `SELECT 1` round trip and
             the naive query that reads the raw rows of the last 10 minutes instead of rollups.
  latency    Real operator + API server: patches at 10 applications/s turn bad (50 % failures,
             rolled back); seconds until the registry row is inactive and until the CR status says
             so. Baseline: the runbook's own alert (`for: 10m`) cannot fire before 600 s.
  simulate   Pure, numpy: 10,000 patches x 24 h at 5 s steps, baselines 1-10 % failures (a failure
             rolls back), with and without injected 2x-10x regressions: false deactivations per
             10,000 patch-days and samples needed to catch a 5x regression; the Regression rule
             (CUSUM against each patch's own baseline) beside Lorden's lower bound.

Usage: python bench/guard_bench.py [cycle|latency|simulate ...] [--rows 1000000 10000000] [--patches 1000 10000]
       python bench/guard_bench.py cycle --rows 100000000 --patches 10000 --fast-fill --database-url URL
Needs numpy for `simulate` (pip install -e '.[bench]').
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from selfheal.core.guard import cusum  # noqa: E402
from selfheal.core.guard.rules import GuardSettings  # noqa: E402
from selfheal.registry.migrate import migrate  # noqa: E402
from selfheal.services.guard_cycle import GuardCycle  # noqa: E402


# ---------------------------------------------------------------------------------------- cycle
def _fill(url: str, *, rows: int, patches: int, fast: bool = False) -> float:
    """N application rows over 30 days and P patches, with their rollups.

    `fast`: the rows go in with triggers off (no per-statement rollup, no foreign-key check) and
    the rollups are then built by the trigger's own aggregate over the whole table, 5-second ones
    for the last two hours and minute ones for the last two days only (what the operator's pruning
    keeps). Same end state, several times quicker: how the 100M-row database is built.
    """
    started = time.monotonic()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT selfheal_ensure_application_partitions(current_date - 31, current_date + 1)")
        conn.execute(
            """INSERT INTO sdk_self_healing_registry (id, sdk_language, error_signature, patch_code, description)
                        SELECT 'p' || i, 'node', 'E' || i, 'this.timeout = 30000;', 'bench'
                        FROM generate_series(1, %s) AS i""",
            (patches,),
        )
        if fast:
            conn.execute("SET session_replication_role = replica")
        # In batches of 1M rows: one statement each, rolled up by the statement trigger unless fast.
        batch = 1_000_000
        for start in range(0, rows, batch):
            conn.execute(
                """INSERT INTO sdk_patch_applications (patch_id, developer_id, sdk_language, success,
                                                       rollback_triggered, applied_at)
                   SELECT 'p' || (1 + (i * 7919) %% %(patches)s), 'dev', 'node', i %% 20 <> 0, i %% 40 = 0,
                          now() - (i::float8 / %(rows)s) * interval '30 days'
                   FROM generate_series(%(start)s::bigint, %(stop)s::bigint) AS i""",
                {"patches": patches, "rows": rows, "start": start, "stop": min(start + batch, rows) - 1},
            )
            if fast and (start // batch) % 10 == 9:
                print(f"   {start + batch:,} rows in {time.monotonic() - started:.0f} s", flush=True)
        if fast:
            conn.execute("SET session_replication_role = DEFAULT")
            conn.execute("SET work_mem = '4GB'")  # the aggregate of 100M rows in memory, not spilled to disk
            conn.execute("""INSERT INTO sdk_patch_rollups (width, bucket, patch_id, total, failures, rollbacks)
                            SELECT w.width, date_bin(make_interval(secs => w.width), a.applied_at, timestamptz 'epoch'),
                                   a.patch_id, count(*), count(*) FILTER (WHERE NOT a.success),
                                   count(*) FILTER (WHERE a.rollback_triggered)
                            FROM sdk_patch_applications a CROSS JOIN (VALUES (5), (60), (3600)) AS w(width)
                            WHERE a.patch_id IS NOT NULL
                              AND (w.width = 3600 OR a.applied_at > now() - CASE w.width WHEN 5 THEN interval '2 hours'
                                                                                         ELSE interval '2 days' END)
                            GROUP BY 1, 2, 3""")
        conn.execute("VACUUM ANALYZE")
    return time.monotonic() - started


def _has_patches(url: str) -> bool:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT EXISTS (SELECT 1 FROM sdk_self_healing_registry)").fetchone()[0]


def _recent_traffic(url: str, *, rows: int, patches: int) -> None:
    """The last 15 minutes at the fill's rate, written now through the triggers: a long fill's
    newest rows are as old as the fill, and a cycle would then find no patch to evaluate."""
    recent = max(1, rows * 900 // (30 * 86400))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            """INSERT INTO sdk_patch_applications (patch_id, developer_id, sdk_language, success,
                                                           rollback_triggered, applied_at)
                        SELECT 'p' || (1 + (i * 7919) %% %(patches)s), 'dev', 'node', i %% 20 <> 0, i %% 40 = 0,
                               now() - (i::float8 / %(recent)s) * interval '15 minutes'
                        FROM generate_series(0::bigint, %(recent)s - 1) AS i""",
            {"patches": patches, "recent": recent},
        )


def _timed(url: str, sql: str, repeat: int) -> list[float]:
    with psycopg.connect(url, autocommit=True) as conn:
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            conn.execute(sql).fetchall()
            times.append(time.perf_counter() - started)
    return times


def _cycle_times(url: str, repeat: int) -> tuple[list[float], int, int]:
    """Cycle durations as the operator runs them (quiet patches judged in SQL), the patches judged
    and, of those, the ones evaluated in full in Python."""
    settings = GuardSettings()
    cycle = GuardCycle(settings_for=lambda patch: settings)

    async def go():
        times, full = [], 0
        async with await psycopg.AsyncConnection.connect(url) as conn:
            for _ in range(repeat):
                started = time.perf_counter()
                async with conn.transaction():
                    decisions = await cycle.run(
                        conn, now=time.time(), windows=settings.windows(), default_settings=settings
                    )
                times.append(time.perf_counter() - started)
                full = len(decisions)
        return times, len(cycle.verdicts), full

    return asyncio.run(go())


def _ms(values: list[float]) -> str:
    ordered = sorted(values)
    return f"median {statistics.median(ordered) * 1000:7.2f} ms  p95 {ordered[int(0.95 * (len(ordered) - 1))] * 1000:7.2f} ms"


def bench_cycle(
    admin_url: str | None,
    make_url,
    *,
    rows_list: list[int],
    patches_list: list[int],
    repeat: int,
    fast_fill: bool = False,
    existing_url: str | None = None,
) -> None:
    """`existing_url`: a database to use instead of throwaway ones: filled if it holds no patch yet
    (same rows and patches), measured, and kept for the next run."""
    print("\n== one evaluation cycle (rows spread over 30 days; guard defaults)")
    for rows in rows_list:
        for patches in patches_list:
            url = existing_url or make_url()
            migrate(url)
            fill = 0.0
            if existing_url is None or not _has_patches(url):
                fill = _fill(url, rows=rows, patches=patches, fast=fast_fill)
            _recent_traffic(url, rows=rows, patches=patches)
            cycle, judged, full = _cycle_times(url, repeat)
            naive = _timed(
                url,
                """SELECT patch_id, count(*), count(*) FILTER (WHERE NOT success),
                                          count(*) FILTER (WHERE rollback_triggered)
                                   FROM sdk_patch_applications WHERE applied_at > now() - interval '10 minutes'
                                   GROUP BY patch_id""",
                repeat,
            )
            ping = _timed(url, "SELECT 1", repeat)
            print(
                f"rows {rows:>11,}  patches {patches:>6,}  (load {fill:6.1f} s, {judged:>6,} patches with traffic judged,"
                f" {full:,} of them in full)"
            )
            print(f"   guard cycle       {_ms(cycle)}")
            print(f"   first cycle       {cycle[0] * 1000:7.2f} ms   (reads every patch's 24 h baseline: once an hour)")
            print(f"   baseline raw 10m  {_ms(naive)}   (same counts read from raw rows, no rollups)")
            print(f"   baseline SELECT 1 {_ms(ping)}", flush=True)
            if existing_url is None:  # 100M rows take tens of GB: one at a time
                with psycopg.connect(admin_url, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE "{url.rsplit("/", 1)[1].split("?")[0]}"')


# -------------------------------------------------------------------------------------- latency
def bench_latency(env, *, trials: int) -> None:
    import kubernetes

    from tests.support import OperatorProcess, Patches, Registry

    print(f"\n== seconds from turning bad (50 % failures at 10/s) to deactivation, {trials} patches")
    api = kubernetes.client.CustomObjectsApi(kubernetes.config.new_client_from_config(config_file=str(env.kubeconfig)))
    namespace = f"bench-{uuid.uuid4().hex[:6]}"
    kubernetes.client.CoreV1Api(api.api_client).create_namespace({"metadata": {"name": namespace}})
    url = env.postgres.url("molam_connect")
    log = Path(tempfile.mkdtemp()) / "operator.log"
    operator = OperatorProcess(kubeconfig=env.kubeconfig, database_url=url, log_file=log)
    operator.start()
    try:
        patches, registry = Patches(api, namespace), Registry(url)
        for index in range(trials):
            patches.create(f"lat{index}")
        ids = {}
        for index in range(trials):
            patches.wait_condition(f"lat{index}", "Active", status="True", timeout=60)
            ids[index] = registry.row(namespace, f"lat{index}")["id"]
        results = [None] * trials

        def trial(index: int) -> None:
            name, patch_id = f"lat{index}", ids[index]
            with psycopg.connect(url, autocommit=True) as conn:

                def send(share: float, seconds: float) -> None:
                    end = time.monotonic() + seconds
                    while time.monotonic() < end:
                        conn.execute(
                            """INSERT INTO sdk_patch_applications (patch_id, developer_id, sdk_language, success,
                                                                            rollback_triggered)
                                        VALUES (%s, 'dev', 'node', random() >= %s, false)
                                        RETURNING id""",
                            (patch_id, share),
                        )
                        conn.execute(
                            """UPDATE sdk_patch_applications SET rollback_triggered = NOT success
                                        WHERE id = (SELECT max(id) FROM sdk_patch_applications WHERE patch_id = %s)""",
                            (patch_id,),
                        )
                        time.sleep(0.1)

                send(0.01, 10 + index)  # healthy first, staggered
                turned = time.monotonic()
                registry_s = status_s = None
                sent = 0
                while time.monotonic() - turned < 120 and (registry_s is None or status_s is None):
                    # Exactly 10 a second on average, however long the checks below take.
                    due = int((time.monotonic() - turned) * 10) + 1 - sent
                    conn.execute(
                        """INSERT INTO sdk_patch_applications (patch_id, developer_id, sdk_language, success,
                                                                        rollback_triggered)
                                    SELECT %s, 'dev', 'node', ok, NOT ok
                                    FROM (SELECT random() >= 0.5 AS ok FROM generate_series(1, %s)) r""",
                        (patch_id, due),
                    )
                    sent += due
                    if registry_s is None and not registry.row(namespace, name)["active"]:
                        registry_s = time.monotonic() - turned
                    if status_s is None:
                        condition = patches.condition(name, "Active")
                        if condition and condition["reason"] == "AutoDeactivated":
                            status_s = time.monotonic() - turned
                    time.sleep(0.1)
                results[index] = (registry_s, status_s)

        threads = [threading.Thread(target=trial, args=(index,)) for index in range(trials)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        operator.stop()
    reg = sorted(r[0] for r in results if r and r[0] is not None)
    sts = sorted(r[1] for r in results if r and r[1] is not None)
    p95 = lambda values: values[int(0.95 * (len(values) - 1))] if values else float("nan")  # noqa: E731
    print(f"   registry inactive: median {statistics.median(reg):5.1f} s  p95 {p95(reg):5.1f} s  ({len(reg)}/{trials})")
    print(f"   CR status updated: median {statistics.median(sts):5.1f} s  p95 {p95(sts):5.1f} s  ({len(sts)}/{trials})")
    print("   baseline: the runbook's alert needs its 5m window to cross and for: 10m -> >= 600 s")


# ------------------------------------------------------------------------------------- simulate
def bench_simulate(*, patches: int, hours: float, seed: int, confidences: list[float]) -> None:
    import numpy as np

    from selfheal.core.guard.stats import wilson_core, z_score

    step = 5
    steps = int(hours * 3600 / step)
    print(f"\n== simulation: {patches:,} patches x {hours:g} h, evaluation every {step} s, guard defaults")
    print("   traffic per patch log-uniform 0.01-10 applications/s; baseline failure 1-10 %; a failure rolls back")
    base = GuardSettings()
    rules = [rule for rule in base.rules if rule.is_rate and rule.action == "deactivate"]
    reg = base.regression
    per_hour = 3600 // step

    def regression_first_fire(total, bad):
        """First step at which the Regression rule fires (steps: never) and the h in force then, as
        the operator computes it: baseline from the hourly counts of the 24 h before the current
        hour (here: since the start, the regressions start 6-18 h in), p0 floored, Inconclusive
        below the minimum baseline, one CUSUM step per complete 5 s bucket, fires when S > h."""
        n = total.shape[1]
        hours_n = -(-steps // per_hour)
        hourly_t = np.add.reduceat(total, np.arange(0, steps, per_hour), axis=0)
        hourly_b = np.add.reduceat(bad, np.arange(0, steps, per_hour), axis=0)
        cum_t = np.vstack([np.zeros((1, n)), np.cumsum(hourly_t, 0)])
        cum_b = np.vstack([np.zeros((1, n)), np.cumsum(hourly_b, 0)])
        hour = np.arange(hours_n)
        lo = np.maximum(hour - 24, 0)
        base_t, base_b = cum_t[hour] - cum_t[lo], cum_b[hour] - cum_b[lo]
        covered = np.maximum(hour - lo, 1)[:, None]  # hours since the patch's first hourly bucket
        conclusive = base_t >= max(reg.min_baseline_samples, 1)
        p0h = np.maximum(reg.floor, base_b / np.maximum(base_t, 1))
        p1h = cusum.alternative(p0h, reg.factor, minimum=np.minimum)
        on_failure, on_success = cusum.weights(p0h, p1h, log=np.log)
        h = cusum.threshold(
            samples_per_day=base_t * 24.0 / covered, budget_days=reg.budget_patch_days, log=np.log, maximum=np.maximum
        )
        at = np.arange(steps) // per_hour
        on_failure, on_success = np.where(conclusive, on_failure, 0.0)[at], np.where(conclusive, on_success, 0.0)[at]
        # S_t = max(0, S_t-1 + x_t) is C_t - min(0, min C_k) (Lindley); without a baseline x = 0 and S
        # rests at 0 (the baseline only grows in the first 24 h, so that is a prefix of the day).
        c = np.cumsum(bad * on_failure + (total - bad) * on_success, 0)
        s = c - np.minimum(np.minimum.accumulate(c, 0), 0.0)
        fire = conclusive[at] & (s > h[at])
        fired = fire.any(0)
        first = np.where(fired, fire.argmax(0), steps)
        return first, h[np.minimum(first, steps - 1) // per_hour, np.arange(n)]

    def run(confidence: float, *, regress: bool, early: bool = True):
        rng = np.random.default_rng(seed)
        chunk = 250
        false_or_caught, samples_needed, factors, delays, raw_factors = 0, [], [], [], []
        # The Regression rule, per patch: traffic, true baseline, factor, start, and the first step
        # each detector fires (the threshold rules, the Regression rule), the samples up to them.
        per_patch = {
            key: []
            for key in (
                "rate",
                "p0",
                "factor",
                "start",
                "rules_fire",
                "reg_fire",
                "reg_h",
                "rules_samples",
                "reg_samples",
            )
        }
        for first in range(0, patches, chunk):
            n = min(chunk, patches - first)
            rate = 10 ** rng.uniform(-2, 1, n)
            p0 = rng.uniform(0.01, 0.10, n)
            factor = rng.uniform(2, 10, n)
            start = rng.integers(steps // 4, 3 * steps // 4, n)
            t = np.arange(steps)[:, None]
            p = np.where(regress & (t >= start), np.minimum(p0 * factor, 1.0), p0)
            total = rng.poisson(rate * step, (steps, n))
            bad = rng.binomial(total, p)
            cs_t = np.vstack([np.zeros((1, n)), np.cumsum(total, 0)])
            cs_b = np.vstack([np.zeros((1, n)), np.cumsum(bad, 0)])

            def window(seconds: int):
                k = seconds // step
                lo = np.maximum(np.arange(1, steps + 1) - k, 0)
                return cs_t[1:] - cs_t[lo], cs_b[1:] - cs_b[lo]

            fire = np.zeros((steps, n), bool)
            for rule in rules:
                wt, wb = window(rule.window_seconds)
                holds = (wt >= base.min_samples) & (wb > rule.threshold * wt)
                # Prometheus for: consecutive holding evaluations since the first one.
                last_false = np.maximum.accumulate(np.where(~holds, t, -1), axis=0)
                fire |= holds & ((t - last_false - 1) * step >= rule.for_seconds)
                if early:
                    z = z_score(confidence=confidence)
                    for seconds in sorted({*base.early_windows_seconds, rule.window_seconds}):
                        et, eb = window(seconds)
                        enough = et >= max(base.early_min_samples, base.min_samples)
                        lower = wilson_core(eb, np.maximum(et, 1), z)
                        fire |= enough & (lower > rule.threshold)
            fired = fire.any(0)
            first_fire = np.where(fired, fire.argmax(0), steps)
            reg_fire, reg_h = regression_first_fire(total, bad)
            columns = np.arange(n)
            for key, value in (
                ("rate", rate),
                ("p0", p0),
                ("factor", factor),
                ("start", start),
                ("rules_fire", first_fire),
                ("reg_fire", reg_fire),
                ("reg_h", reg_h),
                ("rules_samples", cs_t[np.minimum(first_fire + 1, steps), columns] - cs_t[start, columns]),
                ("reg_samples", cs_t[np.minimum(reg_fire + 1, steps), columns] - cs_t[start, columns]),
            ):
                per_patch[key].append(np.asarray(value))
            if not regress:
                false_or_caught += int(fired.sum())
                continue
            before = fired & (first_fire < start)  # fired on the healthy part: a false deactivation
            false_or_caught += int(before.sum())
            caught = fired & ~before
            for i in np.nonzero(caught)[0]:
                samples_needed.append(int(cs_t[first_fire[i] + 1, i] - cs_t[start[i], i]))
                factors.append(factor[i] * p0[i])
                delays.append((first_fire[i] - start[i]) * step)
                raw_factors.append(factor[i])
        run.per_patch = {key: np.concatenate(values) for key, values in per_patch.items()}
        return false_or_caught, np.array(samples_needed), np.array(factors), np.array(delays), np.array(raw_factors)

    patch_days = patches * hours / 24
    healthy = None
    for confidence in confidences:
        started = time.monotonic()
        false, *_ = run(confidence, regress=False)
        if confidence == base.early_confidence:
            healthy = run.per_patch
        print(
            f"   early cut-off at {confidence:.3%}: false deactivations {false} in {patch_days:,.0f} healthy patch-days"
            f" = {false * 10_000 / patch_days:.2f} per 10,000  ({time.monotonic() - started:.0f} s)"
        )
    false, *_ = run(0.0, regress=False, early=False)
    print(f"   baseline, for: rules only (no early cut-off): {false * 10_000 / patch_days:.2f} per 10,000 patch-days")

    confidence = base.early_confidence
    false, samples, regressed, delays, factor = run(confidence, regress=True)
    print(
        f"   with regressions (default {confidence:.1%}): {len(samples):,} caught of {patches:,};"
        f" {false} fired before the regression"
    )
    for low, high in ((0.2, 0.3), (0.3, 0.5), (0.5, 1.01)):
        sel = (regressed > low) & (regressed <= high)
        if sel.any():
            print(
                f"     regressed rate {low:.0%}-{min(high, 1):.0%}: samples to catch median {np.median(samples[sel]):6.0f}"
                f"  p90 {np.percentile(samples[sel], 90):6.0f};  seconds median {np.median(delays[sel]):5.0f}"
            )
    # A 5x regression crosses the 20 % rollback threshold from a baseline above 4 %; below, it is not
    # the guard's to catch (the runbook's thresholds are absolute).
    five = (factor > 4.5) & (factor < 5.5) & (regressed > 0.2)
    if five.any():
        print(
            f"   5x regressions (4.5-5.5x) above the threshold: {five.sum()} caught; samples to catch median"
            f" {np.median(samples[five]):.0f}  p90 {np.percentile(samples[five], 90):.0f}"
        )
    regressed = run.per_patch
    if healthy is None:
        run(base.early_confidence, regress=False)
        healthy = run.per_patch
    _print_regression(np, reg=reg, healthy=healthy, regressed=regressed, patch_days=patch_days, steps=steps, step=step)


def _print_regression(np, *, reg, healthy, regressed, patch_days: float, steps: int, step: int) -> None:
    """The Regression rule in the same simulation: false alarms, samples to catch 5x, Lorden's bound."""
    print(
        f"\n== Regression rule (CUSUM vs own 24 h baseline): factor {reg.factor:g}, budget one false alarm per"
        f" {reg.budget_patch_days:,.0f} patch-days, floor {reg.floor:.1%}, baseline >= {reg.min_baseline_samples:,}"
        f" applications, action {reg.action}"
    )
    reg_false = int((healthy["reg_fire"] < steps).sum())
    rules_false = int((healthy["rules_fire"] < steps).sum())
    either = int(((healthy["reg_fire"] < steps) | (healthy["rules_fire"] < steps)).sum())
    print(
        f"   false alarms of Regression: {reg_false} in {patch_days:,.0f} healthy patch-days"
        f" = {reg_false * 10_000 / patch_days:.2f} per 10,000 patch-days (goal <= 1)"
    )
    deactivating = either if reg.deactivate else rules_false
    print(
        f"   false deactivations overall (threshold rules{' + Regression' if reg.deactivate else ''}):"
        f" {deactivating * 10_000 / patch_days:.2f} per 10,000 patch-days (goal <= 1); with"
        f" regression.deactivate{'' if reg.deactivate else ' (not the default)'}: {either * 10_000 / patch_days:.2f}"
    )
    r = regressed
    false_reg = int((r["reg_fire"] < r["start"]).sum())
    print(f"   with regressions: Regression fired before the regression began on {false_reg} of {len(r['start']):,}")
    five = (r["factor"] > 4.5) & (r["factor"] < 5.5)
    caught = five & (r["reg_fire"] >= r["start"]) & (r["reg_fire"] < steps)
    q = np.minimum(r["p0"] * r["factor"], 0.999)
    # Lorden: gamma = the false-alarm budget in samples (samples per day x budget days) = e^h.
    bound = r["reg_h"] / cusum.kl_divergence(q, r["p0"], log=np.log)
    either_fire = np.minimum(r["reg_fire"], r["rules_fire"])
    either_samples = np.where(r["reg_fire"] <= r["rules_fire"], r["reg_samples"], r["rules_samples"])
    either_caught = five & (either_fire >= r["start"]) & (either_fire < steps)
    print("   5x regressions (4.5-5.5x), samples from the regression's start to the first alarm:")
    print(
        "     baseline    caught    Regression median   p90   seconds median | Lorden bound median"
        " | any rule median   p90"
    )
    for low, high in ((0.01, 0.10), (0.01, 0.04), (0.04, 0.07), (0.07, 0.10)):
        band = five & (r["p0"] >= low) & (r["p0"] < high)
        sel, sel_any = caught & band, either_caught & band
        if not sel.any():
            print(f"     {low:.0%}-{high:.0%}     0/{band.sum():<5}")
            continue
        seconds = (r["reg_fire"][sel] - r["start"][sel]) * step
        print(
            f"     {low:>3.0%}-{high:<4.0%}  {sel.sum():>5}/{band.sum():<5}  {np.median(r['reg_samples'][sel]):14.0f}"
            f"  {np.percentile(r['reg_samples'][sel], 90):5.0f}  {np.median(seconds):14.0f} |"
            f" {np.median(bound[sel]):19.0f} | {np.median(either_samples[sel_any]):15.0f}"
            f"  {np.percentile(either_samples[sel_any], 90):5.0f}"
        )
    missed = five & ~caught & (r["reg_fire"] >= r["start"])
    if missed.any():
        print(
            f"   5x regressions not caught by Regression: {missed.sum()} (traffic median"
            f" {np.median(r['rate'][missed]):.3f}/s: baseline under {reg.min_baseline_samples:,} applications, or the"
            f" day ended first)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", nargs="*", default=["cycle", "latency", "simulate"])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--patches", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument(
        "--fast-fill",
        action="store_true",
        help="cycle: load rows with triggers off, then build the rollups in one aggregate (for 100M)",
    )
    parser.add_argument(
        "--database-url",
        help="cycle: use this database (first --rows and --patches only): filled"
        " when it holds no patch yet, kept afterwards for the next run",
    )
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--sim-patches", type=int, default=10_000)
    parser.add_argument("--sim-hours", type=float, default=24)
    parser.add_argument("--confidence", type=float, nargs="+", default=[0.99, 0.999])
    args = parser.parse_args()

    if "simulate" in args.what:
        bench_simulate(patches=args.sim_patches, hours=args.sim_hours, seed=7, confidences=args.confidence)
    if "cycle" in args.what and args.database_url:
        bench_cycle(
            None,
            None,
            rows_list=args.rows[:1],
            patches_list=args.patches[:1],
            repeat=args.repeat,
            fast_fill=args.fast_fill,
            existing_url=args.database_url,
        )
        args.what = [what for what in args.what if what != "cycle"]
    if "cycle" in args.what or "latency" in args.what:
        from selfheal.devenv import environment

        state_dir = Path(tempfile.mkdtemp(prefix="guard-bench-"))
        env = environment.up(state_dir=state_dir, crd_dir=ROOT / "crds")
        try:
            admin = env.postgres.url("postgres")

            def make_url() -> str:
                name = f"bench_{uuid.uuid4().hex[:8]}"
                with psycopg.connect(admin, autocommit=True) as conn:
                    conn.execute(f'CREATE DATABASE "{name}"')
                return env.postgres.url(name)

            if "cycle" in args.what:
                bench_cycle(
                    admin,
                    make_url,
                    rows_list=args.rows,
                    patches_list=args.patches,
                    repeat=args.repeat,
                    fast_fill=args.fast_fill,
                )
            if "latency" in args.what:
                bench_latency(env, trials=args.trials)
        finally:
            environment.down(state_dir=state_dir)


if __name__ == "__main__":
    main()
