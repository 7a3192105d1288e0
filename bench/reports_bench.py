"""Outcome reports ingested end to end, beside PostgreSQL's own ingest limit on the same rows.

  ours      wrk posting batches of outcome reports (the SDKs' batch size, 100) to
            POST /api/dev/self-heal/reports on N `selfheal api` processes (one port each, one wrk
            per port, one developer token per port): real tokens, authentication, validation,
            the outcome buffer, COPY. Every report names a patch and carries the receipt of a
            lookup that token made for that patch. Every request's body is bytes of its own.
            Rows/s = rows written / (first request .. every buffer empty).
  baseline  the same number of rows, the same values, as COPY text lines formatted beforehand,
            written by 8 connections in parallel (asyncio, one COPY each): what PostgreSQL itself
            ingests here, into the same table with its triggers and indexes.

Goal: ours >= 0.7x the baseline. Interleaved rounds (ours, then the baseline on as many rows);
the figure per process count is the median of its rounds' ratios.

Usage: python bench/reports_bench.py [--api-processes 1 2 3] [--seconds 8] [--rounds 2] [--connections 64]
Needs wrk (Debian package `wrk`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from results import record  # noqa: E402
from seeding import seed_patches  # noqa: E402

from selfheal.devenv.postgres import start_postgres, stop_postgres  # noqa: E402
from selfheal.registry.migrate import migrate  # noqa: E402
from selfheal.registry.outcomes import COLUMNS, Application, context_json  # noqa: E402
from tests.support import free_port, wait_until  # noqa: E402

GOAL_RATIO = 0.7
BASELINE_CONNECTIONS = 8


def selfheal(*args: str, url: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "selfheal", *args, "--database-url", url], check=True, capture_output=True, text=True
    ).stdout.strip()


def post(url: str, body: dict, token: str) -> tuple[int, dict]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def receipts(api: str, token: str, patches: int) -> dict[str, str | None]:
    """One lookup per patch, as an SDK does before it reports: the answer's receipt for each."""
    found = {}
    for index in range(patches):
        status, answer = post(
            api + "/api/dev/self-heal", {"sdk": "node", "error": f"E{index:05d}", "status": 503}, token
        )
        patch_id = answer.get("patch", {}).get("id") if status == 200 else None
        if patch_id != f"p{index:05d}":
            raise SystemExit(f"lookup for E{index:05d} answered {status} {answer}")
        found[patch_id] = answer.get("receipt")
    return found


def batch(receipts_by_patch: dict[str, str | None], *, size: int, offset: int) -> dict:
    """`size` reports over the patches, about one in seven failed and rolled back; the first
    report's context holds `"request": 0`, which the wrk script makes unique per request."""
    ids = sorted(receipts_by_patch)
    now = datetime.now(UTC).isoformat()
    reports = []
    for index in range(size):
        patch_id = ids[(offset + index) % len(ids)]
        failed = index % 7 == 0
        reports.append(
            {
                "patch_id": patch_id,
                "receipt": receipts_by_patch[patch_id],
                "sdk": "node",
                "error": f"E{patch_id[1:]} connect ECONNREFUSED 10.0.3.7:443",
                "success": not failed,
                "rollback_triggered": failed,
                "context": {"request": 0} if index == 0 else {"endpoint": "/v1/payments", "attempt": 1 + index % 3},
                "applied_at": now,
            }
        )
    return {"reports": reports}


def copy_lines(body: dict, developer: str, rows: int) -> list[bytes]:
    """The rows the API would write for `rows` reports of `body`'s kind, as COPY text lines."""
    reports = body["reports"]
    lines = []
    for index in range(rows):
        r = reports[index % len(reports)]
        context = {"request": index} if index % len(reports) == 0 else r["context"]
        lines.append(
            Application(
                r["patch_id"],
                developer,
                r["sdk"],
                r["error"],
                r["success"],
                r["rollback_triggered"],
                True,
                context_json(context),
                datetime.fromisoformat(r["applied_at"]),
            ).copy_line()
        )
    return lines


async def raw_copy(url: str, lines: list[bytes], cpu: Callable[[], float]) -> tuple[float, float]:
    """Seconds for 8 connections, already open, to COPY their share of `lines` in parallel, and the
    database's CPU seconds meanwhile (read before the connections close: a backend gone is counted
    only once the postmaster has reaped it)."""
    parts = [b"".join(lines[index::BASELINE_CONNECTIONS]) for index in range(BASELINE_CONNECTIONS)]
    conns = [await psycopg.AsyncConnection.connect(url) for _ in parts]
    statement = f"COPY sdk_patch_applications ({', '.join(COLUMNS)}) FROM STDIN"

    async def copy(conn: psycopg.AsyncConnection, data: bytes) -> None:
        async with conn.transaction():
            async with conn.cursor() as cursor:
                async with cursor.copy(statement) as writer:
                    for start in range(0, len(data), 1 << 20):
                        await writer.write(data[start : start + (1 << 20)])

    try:
        cpu_before, started = cpu(), time.perf_counter()
        await asyncio.gather(*(copy(conn, data) for conn, data in zip(conns, parts, strict=True)))
        return time.perf_counter() - started, cpu() - cpu_before
    finally:
        for conn in conns:
            await conn.close()


TICK = os.sysconf("SC_CLK_TCK")


def _cpu_of(pid: int, *, children: bool) -> float:
    """CPU seconds of `pid` (and of its children it has reaped, with `children`), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    ticks = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if children else 0)
    return ticks / TICK


def postgres_cpu(postmaster: int) -> float:
    """CPU seconds of the postmaster and every backend, living or gone: where the database's time went."""
    total = _cpu_of(postmaster, children=True)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
            if parent == postmaster:
                total += _cpu_of(int(entry.name), children=True)
    return total


def rows_after(url: str, last_id: int) -> tuple[int, int]:
    with psycopg.connect(url) as conn:
        count, top = conn.execute(
            "SELECT count(*), coalesce(max(id), %s) FROM sdk_patch_applications WHERE id > %s", (last_id, last_id)
        ).fetchone()
    return count, top


def buffered(api: str) -> float:
    text = urllib.request.urlopen(api + "/metrics", timeout=10).read().decode()
    return float(re.search(r"^selfheal_api_outcomes_buffered (\S+)$", text, re.M).group(1))


def run_wrk(apis: list[str], bodies: list[Path], tokens: list[str], *, seconds: int, connections: int) -> dict:
    """One wrk per API process, all at once; their requests, non-2xx answers and worst p99."""
    script = ROOT / "bench/wrk/post_reports.lua"
    per = max(1, connections // len(apis))
    runs = [
        subprocess.Popen(
            [
                "wrk",
                "-t1",
                f"-c{per}",
                f"-d{seconds}s",
                "--latency",
                "-s",
                str(script),
                api + "/api/dev/self-heal/reports",
            ],
            env={**os.environ, "BODY_FILE": str(body), "TOKEN": token},
            stdout=subprocess.PIPE,
            text=True,
        )
        for api, body, token in zip(apis, bodies, tokens, strict=True)
    ]
    requests = errors = 0
    p99 = 0.0
    for run in runs:
        output = run.communicate()[0]
        requests += int(re.search(r"(\d+) requests in", output).group(1))
        non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
        errors += int(non_2xx.group(1)) if non_2xx else 0
        found = re.search(r"99%\s+([\d.]+)(us|ms|s)", output)
        p99 = max(p99, float(found.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[found.group(2)])
    return {"requests": requests, "errors": errors, "p99_ms": p99}


def start_api(url: str, key: Path, port: int, log: Path) -> subprocess.Popen:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "selfheal",
            "api",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-migrate",
            # One token per wrk, all from one address: neither limit may pace the load generator.
            "--rate",
            "100000",
            "--address-rate",
            "100000",
        ],
        env={**os.environ, "SELFHEAL_DATABASE_URL": url, "SELFHEAL_SIGNING_KEY_FILE": str(key)},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )

    def ready() -> bool:
        if process.poll() is not None:
            raise SystemExit(f"selfheal api exited:\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1):
                return True
        except OSError:
            return False

    wait_until(ready, timeout=60, what=f"selfheal api on port {port}")
    return process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--api-processes", type=int, nargs="+", default=[1, 2, 3], help="process counts to measure")
    parser.add_argument("--seconds", type=int, default=8, help="length of each wrk run")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (ours, baseline) per process count")
    parser.add_argument("--connections", type=int, default=64, help="HTTP connections in all, shared by the wrks")
    parser.add_argument("--batch", type=int, default=100, help="reports per request (the SDKs send 100)")
    parser.add_argument("--patches", type=int, default=100, help="patches the reports name")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("reports_bench needs wrk (apt-get install wrk)")

    tmp = Path(tempfile.mkdtemp(prefix="selfheal-reports-bench-"))
    server = start_postgres(data_dir=tmp / "pg", log_file=tmp / "pg.log", log=lambda message: None)
    processes: list[subprocess.Popen] = []
    results: dict[int, list[dict]] = {count: [] for count in args.api_processes}
    try:
        url = server.url()
        migrate(url)
        seed_patches(url, args.patches)
        key = tmp / "signing.pem"
        subprocess.run([sys.executable, "-m", "selfheal", "keygen", "--out", str(key)], check=True, capture_output=True)
        most = max(args.api_processes)
        apis = []
        for index in range(most):
            port = free_port()
            processes.append(start_api(url, key, port, tmp / f"api{index}.log"))
            apis.append(f"http://127.0.0.1:{port}")
        developers = [f"reports-bench-{index}" for index in range(most)]
        tokens = [selfheal("token", "create", "--developer", developer, url=url) for developer in developers]
        wait_until(
            lambda: all(json.load(urllib.request.urlopen(api + "/readyz"))["patches"] == args.patches for api in apis),
            timeout=60,
            what="every API process serving the patches",
        )
        # One lookup per patch and token (the receipt is bound to the token's developer and the patch).
        signed = [receipts(api, token, args.patches) for api, token in zip(apis, tokens, strict=True)]
        print(
            f"{most} API process(es) up, {args.patches} patches, receipts from {most * args.patches} lookups"
            f" ({'present' if all(signed[0].values()) else 'not issued by this API yet'})",
            flush=True,
        )
        last_id = rows_after(url, 0)[1]
        for round_index in range(args.rounds):
            for count in args.api_processes:
                bodies = []
                for index in range(count):
                    body = batch(signed[index], size=args.batch, offset=index * 37 + round_index)
                    bodies.append(tmp / f"batch{index}.json")
                    bodies[-1].write_text(json.dumps(body))
                cpu_before = postgres_cpu(server.pid), sum(_cpu_of(p.pid, children=False) for p in processes[:count])
                wrk_before = resource.getrusage(resource.RUSAGE_CHILDREN)
                started = time.perf_counter()
                posted = run_wrk(
                    apis[:count], bodies, tokens[:count], seconds=args.seconds, connections=args.connections
                )
                wait_until(
                    lambda count=count: all(buffered(api) == 0 for api in apis[:count]),
                    timeout=300,
                    what="the outcome buffers written",
                )
                elapsed = time.perf_counter() - started
                wrk_after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu = {
                    "postgres": postgres_cpu(server.pid) - cpu_before[0],
                    "api": sum(_cpu_of(p.pid, children=False) for p in processes[:count]) - cpu_before[1],
                    "wrk": wrk_after.ru_utime + wrk_after.ru_stime - wrk_before.ru_utime - wrk_before.ru_stime,
                }
                written, last_id = rows_after(url, last_id)
                expected = (posted["requests"] - posted["errors"]) * args.batch
                lines = copy_lines(json.loads(bodies[0].read_text()), developers[0], written)
                copy_seconds, copy_cpu = asyncio.run(raw_copy(url, lines, lambda: postgres_cpu(server.pid)))
                copied, last_id = rows_after(url, last_id)
                assert copied == written, (copied, written)
                ours, raw = written / elapsed, written / copy_seconds
                per_row = {side: seconds / written * 1e6 for side, seconds in cpu.items()}
                per_row["baseline_postgres"] = copy_cpu / written * 1e6
                results[count].append(
                    {"ours": ours, "baseline": raw, "ratio": ours / raw, "cpu_us_per_row": per_row, **posted}
                )
                print(
                    f"   round {round_index + 1}, {count} API process(es): ours {ours:,.0f} rows/s"
                    f" ({written:,} rows, {expected:,} accepted, {posted['errors']} non-2xx, p99"
                    f" {posted['p99_ms']:.0f} ms) | COPY x{BASELINE_CONNECTIONS} {raw:,.0f} rows/s | ratio {ours / raw:.2f}x",
                    flush=True,
                )
                print(
                    "      CPU us per row: ours PostgreSQL {postgres:.1f}, API {api:.1f}, wrk {wrk:.1f} |"
                    " baseline PostgreSQL {baseline_postgres:.1f}".format(**per_row),
                    flush=True,
                )
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=20)
        stop_postgres(server, log=lambda message: None)
        shutil.rmtree(tmp, ignore_errors=True)

    summary = {}
    print(
        f"\nreports through HTTP ({args.batch} per request, {args.connections} connections) vs COPY from"
        f" {BASELINE_CONNECTIONS} connections, {os.cpu_count()} CPUs, goal >= {GOAL_RATIO}x:"
    )
    for count, rounds in results.items():
        ratio = statistics.median(r["ratio"] for r in rounds)
        ours = statistics.median(r["ours"] for r in rounds)
        raw = statistics.median(r["baseline"] for r in rounds)
        met = ratio >= GOAL_RATIO
        per_round = ", ".join(f"{r['ratio']:.2f}" for r in rounds)
        cpu = {
            side: statistics.median(r["cpu_us_per_row"][side] for r in rounds) for side in rounds[0]["cpu_us_per_row"]
        }
        # What the rates would compare as on cores of their own, all busy: the database's CPU per row
        # for the baseline over everything ours spends per row. Steadier than the rates on a shared machine.
        cpu_ratio = cpu["baseline_postgres"] / (cpu["postgres"] + cpu["api"] + cpu["wrk"])
        summary[str(count)] = {
            "ours_rows_s": ours,
            "baseline_rows_s": raw,
            "ratio": ratio,
            "met": met,
            "cpu_us_per_row": cpu,
            "cpu_ratio": cpu_ratio,
            "rounds": rounds,
        }
        print(
            f"   {count} API process(es): {ours:,.0f} rows/s | baseline {raw:,.0f} rows/s | ratio {ratio:.2f}x"
            f" (rounds {per_round}) | {'MET' if met else 'NOT MET'}"
        )
        print(
            "      CPU us per row (medians): ours PostgreSQL {postgres:.1f} + API {api:.1f} + wrk {wrk:.1f} |"
            " baseline PostgreSQL {baseline_postgres:.1f}".format(**cpu)
            + f" | CPU ratio {cpu_ratio:.2f}x ({'MET' if cpu_ratio >= GOAL_RATIO else 'NOT MET'})"
        )
    enough = [count for count in sorted(results) if summary[str(count)]["met"]]
    best = max(summary, key=lambda count: summary[count]["ratio"])
    print(
        f"   API processes needed for >= {GOAL_RATIO}x: {enough[0] if enough else 'none of ' + str(sorted(results))}"
        f" (best: {best}, {summary[best]['ratio']:.2f}x)"
    )
    record(
        "reports",
        {
            "command": "python bench/reports_bench.py " + " ".join(sys.argv[1:]),
            "by_api_processes": summary,
            "api_processes_needed": enough[0] if enough else None,
            "table": [_table_row(count, figures, batch=args.batch) for count, figures in summary.items()],
        },
    )


def _table_row(count: str, figures: dict, *, batch: int) -> dict:
    cpu = figures["cpu_us_per_row"]
    return {
        "figure": f"reports via HTTP, {count} API process(es), {batch} per request",
        "value": f"{figures['ours_rows_s']:,.0f} rows/s; CPU {cpu['postgres'] + cpu['api'] + cpu['wrk']:.1f} us/row"
        f" (PostgreSQL {cpu['postgres']:.1f}, API {cpu['api']:.1f}, wrk {cpu['wrk']:.1f})",
        "baseline": f"COPY from {BASELINE_CONNECTIONS} connections: {figures['baseline_rows_s']:,.0f} rows/s;"
        f" CPU {cpu['baseline_postgres']:.1f} us/row",
        "ratio": f"{figures['ratio']:.2f}x (CPU {figures['cpu_ratio']:.2f}x)",
        "goal": f">= {GOAL_RATIO}x",
        "met": figures["met"],
    }


if __name__ == "__main__":
    main()
