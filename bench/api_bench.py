"""Lookup benchmark: `selfheal api` beside a bare aiohttp server, same work, same concurrency.

Two loads, each in interleaved wrk rounds (ours, then the bare server) after one unmeasured run
of each, medians of the rounds; beside rate and latency, the CPU each server spent per request:

  same body          one lookup body again and again (bench/wrk/post_json.lua);
  distinct messages  every request a random patch's error code followed by a request id of its
                     own (bench/wrk/post_json_distinct.lua): no body, message or answer cache
                     keyed on them ever repeats, as SDK traffic whose errors carry request ids.

The bare server (bench/bare_lookup_server.py) parses the same JSON and answers a dict lookup
by the error's first word with bytes of a real answer's size. Goals, on distinct messages:
≥ 0.8× the bare rate and p99 ≤ 1.5× the bare p99. Figures go to bench/results.json ("lookups").

Usage: python bench/api_bench.py [--patches 40000] [--seconds 10] [--rounds 3] [--connections 64]
                                 [--py-spy FILE]   (a py-spy profile of the API under distinct messages)
Needs wrk (Debian package `wrk`).
"""

from __future__ import annotations

import argparse
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.results import record  # noqa: E402
from bench.seeding import seed_patches  # noqa: E402
from selfheal.devenv import environment  # noqa: E402
from selfheal.registry.migrate import migrate  # noqa: E402
from tests.support import free_port, wait_until  # noqa: E402

GOAL_RATE = 0.8  # distinct messages: at least this share of the bare server's rate
GOAL_P99 = 1.5  # and a p99 at most this multiple of the bare server's
LOADS = {"same_body": "the same body repeated", "distinct_messages": "a new error message on every request"}


def _ms(match: re.Match) -> float:
    return float(match.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]


def wrk(url: str, *, load: str, body_file: Path, token: str, patches: int, seconds: int, connections: int) -> dict:
    script = ROOT / "bench/wrk" / ("post_json_distinct.lua" if load == "distinct_messages" else "post_json.lua")
    output = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        env={**os.environ, "BODY_FILE": str(body_file), "TOKEN": token, "PATCHES": str(patches)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "rate": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50_ms": _ms(re.search(r"50%\s+([\d.]+)(us|ms|s)", output)),
        "p99_ms": _ms(re.search(r"99%\s+([\d.]+)(us|ms|s)", output)),
        "requests": int(re.search(r"(\d+) requests in", output).group(1)),
        "errors": int(non_2xx.group(1)) if non_2xx else 0,
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc): on a shared machine, the CPU a
    request costs is steadier than the rate, which depends on how much CPU the process got."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(url: str, pid: int, **options) -> dict:
    before = cpu_seconds(pid)
    figures = wrk(url, **options)
    figures["cpu_us_per_request"] = (cpu_seconds(pid) - before) * 1e6 / max(1, figures["requests"])
    return figures


def compare(api: str, bare: str, *, pids: tuple[int, int], load: str, rounds: int, profile=None, **options) -> dict:
    """Interleaved rounds of ours and the bare server; the medians of each and their ratios."""
    # One unmeasured run of each first: a server in service has its caches warm (answers are
    # still signed anew every 30 s, so signing stays in the figures).
    wrk(api + "/api/dev/self-heal", load=load, **options)
    wrk(bare + "/api/dev/self-heal", load=load, **{**options, "token": ""})
    runs: list[tuple[dict, dict]] = []
    for round_number in range(rounds):
        profiler = profile(options["seconds"]) if profile and round_number == 0 else None
        ours = measured(api + "/api/dev/self-heal", pids[0], load=load, **options)
        if profiler is not None:
            profiler.wait(timeout=60)
        theirs = measured(bare + "/api/dev/self-heal", pids[1], load=load, **{**options, "token": ""})
        runs.append((ours, theirs))
        print(
            f"   {load} round {round_number + 1}: ours {ours['rate']:.0f}/s p50 {ours['p50_ms']:.2f} ms "
            f"p99 {ours['p99_ms']:.2f} ms {ours['cpu_us_per_request']:.0f} us CPU/request (non-2xx {ours['errors']})"
            f" | bare {theirs['rate']:.0f}/s p50 {theirs['p50_ms']:.2f} ms p99 {theirs['p99_ms']:.2f} ms "
            f"{theirs['cpu_us_per_request']:.0f} us CPU/request",
            flush=True,
        )
    figures: dict = {}
    for side, index in (("ours", 0), ("bare", 1)):
        figures[side] = {
            key: round(statistics.median(run[index][key] for run in runs), 3)
            for key in ("rate", "p50_ms", "p99_ms", "cpu_us_per_request")
        }
    figures["ours"]["non_2xx"] = sum(run[0]["errors"] for run in runs)
    figures["rate_ratio"] = round(figures["ours"]["rate"] / figures["bare"]["rate"], 3)
    figures["p50_ratio"] = round(figures["ours"]["p50_ms"] / figures["bare"]["p50_ms"], 3)
    figures["p99_ratio"] = round(figures["ours"]["p99_ms"] / figures["bare"]["p99_ms"], 3)
    figures["cpu_ratio"] = round(figures["ours"]["cpu_us_per_request"] / figures["bare"]["cpu_us_per_request"], 3)
    figures["rate_ratio_per_round"] = [round(o["rate"] / b["rate"], 3) for o, b in runs]
    return figures


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

    try:
        wait_until(ready, timeout=60, what=ready_url)
    except AssertionError:
        process.kill()
        raise SystemExit(f"{argv[1:4]} did not start:\n{log.read_text()[-2000:]}") from None
    return process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patches", type=int, default=40_000, help="patches in the catalog (codes E00000…)")
    parser.add_argument("--seconds", type=int, default=10, help="length of each wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved wrk runs of ours and the bare one, per load")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections, the same for both servers")
    parser.add_argument("--py-spy", type=Path, help="record a py-spy profile of the API during a distinct round")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("api_bench needs wrk (apt-get install wrk)")
    spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if args.py_spy and spy is None:
        raise SystemExit("--py-spy needs py-spy (pip install py-spy)")

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
            api_process = start(
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
                    "100000",
                ],
                env=child_env,
                log=tmp / "api.log",
                ready_url=f"http://127.0.0.1:{api_port}/readyz",
            )
            processes.append(api_process)
            api = f"http://127.0.0.1:{api_port}"

            def loaded() -> bool:
                try:
                    return json.load(urllib.request.urlopen(api + "/readyz"))["patches"] == args.patches
                except urllib.error.HTTPError:
                    return False  # 503 until the catalog has loaded

            wait_until(loaded, timeout=60, what="catalog loaded")
            bare_process = start(
                [sys.executable, str(ROOT / "bench/bare_lookup_server.py"), str(bare_port), str(args.patches)],
                env=child_env,
                log=tmp / "bare.log",
                ready_url=f"http://127.0.0.1:{bare_port}/api/dev/self-heal",
            )
            processes.append(bare_process)

            def py_spy(seconds: int) -> subprocess.Popen:
                return subprocess.Popen(
                    [spy, "record", "--pid", str(api_process.pid), "--duration", str(seconds)]
                    + ["--format", "raw", "--output", str(args.py_spy), "--nonblocking"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )

            body_file = tmp / "lookup.json"
            code = f"E{min(12345, args.patches - 1):05d}"
            body_file.write_text(json.dumps({"sdk": "node", "error": f"{code} connection refused", "status": 503}))
            options = {
                "body_file": body_file,
                "token": token,
                "patches": args.patches,
                "seconds": args.seconds,
                "connections": args.connections,
            }
            bare = f"http://127.0.0.1:{bare_port}"
            figures = {}
            for load in LOADS:
                profile = py_spy if args.py_spy and load == "distinct_messages" else None
                pids = (api_process.pid, bare_process.pid)
                figures[load] = compare(api, bare, pids=pids, load=load, rounds=args.rounds, profile=profile, **options)
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=20)
            environment.down(state_dir=tmp / "state")

    print(
        f"\nlookups, {args.patches} patches, {args.connections} connections, {args.rounds} interleaved rounds "
        f"of {args.seconds} s per load (medians)"
    )
    for load, what in LOADS.items():
        f = figures[load]
        print(
            f"  {what}: ours {f['ours']['rate']:.0f}/s p50 {f['ours']['p50_ms']:.2f} ms "
            f"p99 {f['ours']['p99_ms']:.2f} ms | bare aiohttp {f['bare']['rate']:.0f}/s "
            f"p50 {f['bare']['p50_ms']:.2f} ms p99 {f['bare']['p99_ms']:.2f} ms | "
            f"{f['rate_ratio']:.2f}x rate, {f['p99_ratio']:.2f}x p99 (rounds {f['rate_ratio_per_round']}) | "
            f"CPU per request ours {f['ours']['cpu_us_per_request']:.0f} us, bare "
            f"{f['bare']['cpu_us_per_request']:.0f} us ({f['cpu_ratio']:.2f}x)"
        )
        if f["ours"]["non_2xx"]:
            print(f"  WARNING: {f['ours']['non_2xx']} non-2xx answers from ours under {what}")
    distinct = figures["distinct_messages"]
    rate_met, p99_met = distinct["rate_ratio"] >= GOAL_RATE, distinct["p99_ratio"] <= GOAL_P99
    print(
        f"  goal, new message per request: rate >= {GOAL_RATE}x bare: {distinct['rate_ratio']:.2f}x "
        f"{'MET' if rate_met else 'NOT MET'}; p99 <= {GOAL_P99}x bare: {distinct['p99_ratio']:.2f}x "
        f"{'MET' if p99_met else 'NOT MET'}"
    )
    figures["table"] = table_rows(figures, patches=args.patches)
    record(
        "lookups",
        {
            "command": f"python bench/api_bench.py --patches {args.patches} --seconds {args.seconds} "
            f"--rounds {args.rounds} --connections {args.connections}",
            "patches": args.patches,
            "connections": args.connections,
            "seconds": args.seconds,
            "rounds": args.rounds,
            **figures,
            "goals": {"rate_ratio_at_least": GOAL_RATE, "p99_ratio_at_most": GOAL_P99},
            "met": {"rate": rate_met, "p99": p99_met},
        },
    )


def table_rows(figures: dict, *, patches: int) -> list[dict]:
    """The README table's rows (bench/results.py): each load beside the bare server."""
    rows = []
    for load, label, goal in (
        ("distinct_messages", "a new error message per request", f">= {GOAL_RATE}x rate, p99 <= {GOAL_P99}x"),
        ("same_body", "the same body repeated", "—"),
    ):
        f = figures[load]
        ours, bare = f["ours"], f["bare"]
        met = f["rate_ratio"] >= GOAL_RATE and f["p99_ratio"] <= GOAL_P99 if load == "distinct_messages" else None
        rows.append(
            {
                "figure": f"lookups, {label} ({patches:,} patches)",
                "value": f"{ours['rate']:,.0f}/s, p99 {ours['p99_ms']:.0f} ms, CPU {ours['cpu_us_per_request']:.0f} us/req",
                "baseline": f"bare aiohttp: {bare['rate']:,.0f}/s, p99 {bare['p99_ms']:.0f} ms, "
                f"CPU {bare['cpu_us_per_request']:.0f} us/req",
                "ratio": f"{f['rate_ratio']:.2f}x rate, {f['p99_ratio']:.2f}x p99",
                "goal": goal,
                "met": met,
            }
        )
    return rows


if __name__ == "__main__":
    main()
