"""Registry API benchmark, each figure beside a baseline measured in the same run.

  lookups   wrk against POST /api/dev/self-heal with N patches in the catalog, beside a bare
            aiohttp handler that only does a dict lookup (goal: ≥ 0.9× its rate, p99 ≤ 1.2×);
  reports   rows/s ingested through POST /api/dev/self-heal/reports (batches of 100, 64
            connections) beside raw COPY of the same rows from 8 connections (goal: ≥ 0.85×);
  change    seconds from a registry UPDATE to the API serving the change (goal: ≤ 1 s);
  metrics   /metrics scrape time with P patch series (goal: ≤ 50 ms).

Usage: python bench/api_bench.py [--patches 40000] [--report-rows 1000000] [--seconds 10] [--rounds 5] [--only lookups]
Needs wrk (Debian package `wrk`).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from selfheal.devenv import environment  # noqa: E402
from selfheal.registry.migrate import migrate  # noqa: E402
from tests.support import free_port, wait_until  # noqa: E402

OPERATIONS = json.dumps(
    {
        "format": "selfheal.operations",
        "version": 1,
        "operations": [{"op": "set", "setting": "timeout_ms", "value": 30000}],
    }
)
REPORT_COLUMNS = (
    "(patch_id, developer_id, sdk_language, error_encountered, success, rollback_triggered,"
    " patch_applied, context, applied_at)"
)


def seed_patches(url: str, count: int) -> None:
    with psycopg.connect(url) as conn:
        conn.execute("SET LOCAL selfheal.actor = 'operator'")
        with conn.cursor().copy(
            "COPY sdk_self_healing_registry (id, sdk_language, error_signature, patch_code,"
            " description, severity, validation_state, operations) FROM STDIN"
        ) as copy:
            for index in range(count):
                copy.write_row(
                    (
                        f"p{index:05d}",
                        "node",
                        f"E{index:05d}",
                        "this.timeout = 30000;",
                        f"bench patch {index}",
                        "low",
                        "valid",
                        OPERATIONS,
                    )
                )


def wrk(url: str, *, body_file: Path, token: str, seconds: int, connections: int, distinct: bool = False) -> dict:
    script = ROOT / "bench/wrk" / ("post_json_distinct.lua" if distinct else "post_json.lua")
    output = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        env={**os.environ, "BODY_FILE": str(body_file), "TOKEN": token},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", output)
    p99_ms = float(p99.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    requests = int(re.search(r"(\d+) requests in", output).group(1))
    return {"rate": rate, "p99_ms": p99_ms, "requests": requests, "errors": int(non_2xx.group(1)) if non_2xx else 0}


def compare_lookups(
    api: str, bare: str, *, body_file: Path, token: str, rounds: int, seconds: int, distinct: bool
) -> None:
    results: list[tuple[dict, dict]] = []
    for _ in range(rounds):
        ours = wrk(
            api + "/api/dev/self-heal",
            body_file=body_file,
            token=token,
            seconds=seconds,
            connections=64,
            distinct=distinct,
        )
        theirs = wrk(
            bare + "/api/dev/self-heal",
            body_file=body_file,
            token="",
            seconds=seconds,
            connections=64,
            distinct=distinct,
        )
        results.append((ours, theirs))
        print(
            f"   round: ours {ours['rate']:.0f}/s p99 {ours['p99_ms']:.2f} ms (non-2xx {ours['errors']}) | "
            f"bare {theirs['rate']:.0f}/s p99 {theirs['p99_ms']:.2f} ms",
            flush=True,
        )
    ours_rate, bare_rate = (statistics.median(r[side]["rate"] for r in results) for side in (0, 1))
    ours_p99, bare_p99 = (statistics.median(r[side]["p99_ms"] for r in results) for side in (0, 1))
    bodies = "a body of its own per request" if distinct else "the same body"
    print(
        f"lookups, {bodies} ({rounds} interleaved rounds of {seconds} s, medians): {ours_rate:.0f}/s p99 "
        f"{ours_p99:.2f} ms | bare aiohttp dict lookup {bare_rate:.0f}/s p99 {bare_p99:.2f} ms | "
        f"ratio {ours_rate / bare_rate:.2f}x rate, {ours_p99 / bare_p99:.2f}x p99 (per round "
        f"{min(o['rate'] / b['rate'] for o, b in results):.2f}-{max(o['rate'] / b['rate'] for o, b in results):.2f}x)"
    )


def start(argv: list[str], *, env: dict, log: Path, ready_url: str) -> subprocess.Popen:
    process = subprocess.Popen(argv, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)

    def ready():
        try:
            with urllib.request.urlopen(ready_url, timeout=1):
                return True
        except urllib.error.HTTPError:
            return True  # it answers
        except OSError:
            return False

    wait_until(ready, timeout=60, what=ready_url)
    return process


def raw_copy(url: str, rows: list[tuple], *, connections: int) -> float:
    chunks = [rows[index::connections] for index in range(connections)]

    def copy(chunk):
        with psycopg.connect(url) as conn:
            with conn.cursor().copy(f"COPY sdk_patch_applications {REPORT_COLUMNS} FROM STDIN") as writer:
                for row in chunk:
                    writer.write_row(row)

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(connections) as pool:
        list(pool.map(copy, chunks))
    return len(rows) / (time.perf_counter() - started)


def count_rows(url: str, developer: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT count(*) FROM sdk_patch_applications WHERE developer_id = %s", (developer,)
        ).fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patches", type=int, default=40_000)
    parser.add_argument("--report-rows", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=10, help="length of each wrk run")
    parser.add_argument("--rounds", type=int, default=5, help="lookups: interleaved wrk runs of ours and the bare one")
    parser.add_argument("--only", choices=["lookups"], help="run the lookup comparison alone")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("api_bench needs wrk (apt-get install wrk)")

    with tempfile.TemporaryDirectory(prefix="selfheal-api-bench-") as tmp_name:
        tmp = Path(tmp_name)
        env = environment.up(state_dir=tmp / "state", crd_dir=ROOT / "crds")
        processes: list[subprocess.Popen] = []
        try:
            url = env.database_url
            migrate(url)
            started = time.perf_counter()
            seed_patches(url, args.patches)
            print(f"seeded {args.patches} patches in {time.perf_counter() - started:.1f} s")
            key = tmp / "signing.pem"
            subprocess.run(
                [sys.executable, "-m", "selfheal", "keygen", "--out", str(key)], check=True, capture_output=True
            )
            token = subprocess.run(
                [sys.executable, "-m", "selfheal", "token", "create", "--database-url", url, "--developer", "bench"],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()
            api_port, bare_port = free_port(), free_port()
            child_env = {**os.environ, "SELFHEAL_DATABASE_URL": url, "SELFHEAL_SIGNING_KEY_FILE": str(key)}
            processes.append(
                start(
                    [
                        sys.executable,
                        "-m",
                        "selfheal",
                        "api",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(api_port),
                        "--rate",
                        "100000",
                        # wrk's connections all come from one address: no per-address limit here.
                        "--address-rate",
                        "1000000",
                    ],
                    env=child_env,
                    log=tmp / "api.log",
                    ready_url=f"http://127.0.0.1:{api_port}/readyz",
                )
            )
            api = f"http://127.0.0.1:{api_port}"

            def loaded() -> bool:
                try:
                    return json.load(urllib.request.urlopen(api + "/readyz"))["patches"] == args.patches
                except urllib.error.HTTPError:
                    return False  # 503 until the catalog has loaded

            wait_until(loaded, timeout=60, what="catalog loaded")
            processes.append(
                start(
                    [sys.executable, str(ROOT / "bench/bare_lookup_server.py"), str(bare_port)],
                    env=child_env,
                    log=tmp / "bare.log",
                    ready_url=f"http://127.0.0.1:{bare_port}/api/dev/self-heal",
                )
            )

            lookup = tmp / "lookup.json"
            lookup.write_text(json.dumps({"sdk": "node", "error": "E12345 connection refused", "status": 503}))
            # Interleaved rounds, medians: on a shared machine one run of each can differ by 10-20 %.
            # The same body again and again (SDKs repeat their errors), then a body of its own per request.
            for distinct in (False, True):
                compare_lookups(
                    api,
                    f"http://127.0.0.1:{bare_port}",
                    body_file=lookup,
                    token=token,
                    rounds=args.rounds,
                    seconds=args.seconds,
                    distinct=distinct,
                )
            if args.only == "lookups":
                return
            # Change latency: deactivate, time until the API answers 404; reactivate.
            latencies = []
            body = json.dumps({"sdk": "node", "error": "E00007", "status": 500}).encode()
            request = lambda: urllib.request.Request(
                api + "/api/dev/self-heal",
                data=body,
                method="POST",
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )

            def status() -> int:
                try:
                    return urllib.request.urlopen(request()).status
                except urllib.error.HTTPError as error:
                    return error.code

            for active in (False, True) * 5:
                with psycopg.connect(url) as conn:
                    conn.execute("SET LOCAL selfheal.actor = 'operator'")
                    conn.execute("UPDATE sdk_self_healing_registry SET active = %s WHERE id = 'p00007'", (active,))
                changed = time.perf_counter()
                wait_until(lambda: status() == (200 if active else 404), timeout=30, what="change served")
                latencies.append(time.perf_counter() - changed)
            print(
                f"change served: median {statistics.median(latencies):.3f} s, max {max(latencies):.3f} s "
                f"({len(latencies)} changes, in a catalog of {args.patches} patches)"
            )

            # Reports: wrk posting batches of 100 for a fixed time, then rows written / time to drain.
            now = datetime.now(UTC).isoformat()
            batch = {
                "reports": [
                    {
                        "patch_id": f"p{index:05d}",
                        "sdk": "node",
                        "error": "E",
                        "success": index % 7 != 0,
                        "context": {"i": index},
                    }
                    for index in range(100)
                ]
            }
            batch_file = tmp / "batch.json"
            batch_file.write_text(json.dumps(batch))
            ingest_token = subprocess.run(
                [sys.executable, "-m", "selfheal", "token", "create", "--database-url", url, "--developer", "ingest"],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()
            seconds = max(3, args.seconds)
            started = time.perf_counter()
            posted = wrk(
                api + "/api/dev/self-heal/reports",
                body_file=batch_file,
                token=ingest_token,
                seconds=seconds,
                connections=64,
            )
            accepted = (posted["requests"] - posted["errors"]) * 100
            wait_until(lambda: count_rows(url, "ingest") >= accepted * 0.98, timeout=300, what="reports written")
            ingest_rate = count_rows(url, "ingest") / (time.perf_counter() - started)
            rows = [
                (f"p{index % 100:05d}", "raw", "node", "E", index % 7 != 0, False, True, json.dumps({"i": index}), now)
                for index in range(args.report_rows)
            ]
            raw = raw_copy(url, rows, connections=8)
            print(
                f"reports: {ingest_rate:.0f} rows/s end to end via HTTP (batches of 100, 64 connections, "
                f"{posted['errors']} non-2xx) | raw COPY from 8 connections {raw:.0f} rows/s | "
                f"ratio {ingest_rate / raw:.2f}x"
            )

            # /metrics with one series per reported patch: report once for 10,000 distinct patches.
            series = min(10_000, args.patches)
            metrics_token = subprocess.run(
                [sys.executable, "-m", "selfheal", "token", "create", "--database-url", url, "--developer", "metrics"],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()
            for start_index in range(0, series, 500):
                body = json.dumps(
                    {
                        "reports": [
                            {"patch_id": f"p{index:05d}", "sdk": "node", "error": "E", "success": True}
                            for index in range(start_index, start_index + 500)
                        ]
                    }
                )
                urllib.request.urlopen(
                    urllib.request.Request(
                        api + "/api/dev/self-heal/reports",
                        data=body.encode(),
                        method="POST",
                        headers={"Authorization": f"Bearer {metrics_token}", "Content-Type": "application/json"},
                    )
                )
            scrape = []
            for _ in range(10):
                started = time.perf_counter()
                size = len(urllib.request.urlopen(api + "/metrics").read())
                scrape.append(time.perf_counter() - started)
            print(
                f"/metrics: median {statistics.median(scrape) * 1000:.1f} ms, max {max(scrape) * 1000:.1f} ms, "
                f"{size / 1024:.0f} KiB (series for {series} reported patches)"
            )
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=20)
            environment.down(state_dir=tmp / "state")


if __name__ == "__main__":
    main()
