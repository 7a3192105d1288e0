"""Operator scale benchmark: `selfheal operator` started over a backlog of N existing SelfHealPatch objects.

A control plane of its own (kube-apiserver, etcd, PostgreSQL in a temporary directory). For each
N, N objects are created in a fresh namespace and only then is the operator started, as a
subprocess watching that namespace, with a fresh registry database. Measured:
  - ready:    seconds from the operator's start until every object shows Ready=True for its
              generation (a watch on the namespace, so no polling lists compete for the CPU);
  - peak RSS: the operator's resident set with its children, sampled from /proc every 100 ms;
  - failures: handler failures in its log, and among them pool timeouts ("couldn't get a
              connection"): a wait for the pool is fine, a failure is not (the guard's and the
              registry watch's passes that missed a connection are logged, retried, not counted);
  - steady:   its RSS once every object is Ready and --settle seconds have passed, and the RSS
              per 1,000 objects over the same process started on an empty namespace.

Baseline, same run, same objects (a namespace of their own, same N, same machine): a bare kopf
operator (bench/bare_kopf_operator.py) with the operator's kopf settings and a handler that only
marks each object Ready through kopf's status patch. It is what kopf itself costs to list, watch,
handle and patch N objects; the operator's figures over it are what its validation, compilation,
registry writes, index and loops add. (The API server's list time would only bound the first
step: both processes list first, then handle and patch every object, which is where time goes.)

Goals at 10,000 objects: all Ready <= 120 s, peak RSS <= 300 MiB, no handler failure from pool
exhaustion. Prints MET / NOT MET (also at smaller N, against the same figures), exits 0 either
way, and records its figures into bench/results.json as "operator_scale".

Usage: python bench/operator_scale.py [--objects 2000 10000] [--settle 20] [--no-baseline]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import kubernetes
import psycopg
import urllib3

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.results import record  # noqa: E402
from selfheal.core.resource import GROUP, PLURAL, VERSION  # noqa: E402
from selfheal.devenv import environment  # noqa: E402
from tests.support import patch_body  # noqa: E402

GOAL_READY_S = 120.0
GOAL_PEAK_MIB = 300.0
GOAL_OBJECTS = 10_000
POOL_TIMEOUT = re.compile(r"Handler '[^']+' failed.*couldn't get a connection")
HANDLER_FAILURE = re.compile(r"Handler '[^']+' failed")


# --- memory ----------------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            text = Path(f"/proc/{pid}/task/{task}/children").read_text()
            found += [int(child) for child in text.split()]
    except OSError:
        pass
    return found


def tree_rss_mib(pid: int) -> float:
    """Resident set of `pid` and all its descendants, in MiB."""
    total_kib, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
                    break
        except OSError:
            continue
        pending += _children(current)
    return total_kib / 1024


class RssSampler(threading.Thread):
    def __init__(self, pid: int, every: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.peak = self.last = 0.0
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            self.last = tree_rss_mib(self.pid)
            self.peak = max(self.peak, self.last)
            time.sleep(self.every)


# --- readiness -------------------------------------------------------------------------------------


def _ready(obj: dict) -> bool:
    generation = obj["metadata"].get("generation")
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return condition.get("status") == "True" and condition.get("observedGeneration") == generation
    return False


class ReadyWatch(threading.Thread):
    """Which objects of `namespace` are Ready, from one list and then a watch."""

    def __init__(self, api: kubernetes.client.CustomObjectsApi, namespace: str, expected: int) -> None:
        super().__init__(daemon=True)
        self.api, self.namespace, self.expected = api, namespace, expected
        self.ready: set[str] = set()
        self.all_ready = threading.Event()
        self.halt = threading.Event()

    def _see(self, obj: dict, deleted: bool = False) -> None:
        name = obj["metadata"]["name"]
        if _ready(obj) and not deleted:
            self.ready.add(name)
        else:
            self.ready.discard(name)
        if len(self.ready) >= self.expected:
            self.all_ready.set()

    def _list(self) -> str:
        token, version = None, ""
        while True:
            page = self.api.list_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, limit=500, _continue=token
            )
            for obj in page["items"]:
                self._see(obj)
            token, version = page["metadata"].get("continue"), page["metadata"]["resourceVersion"]
            if not token:
                return version

    def run(self) -> None:
        version = None
        while not self.halt.is_set():
            try:
                if version is None:
                    version = self._list()
                stream = kubernetes.watch.Watch().stream(
                    self.api.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    self.namespace,
                    PLURAL,
                    resource_version=version,
                    timeout_seconds=30,
                )
                for event in stream:
                    if event["type"] == "ERROR":
                        version = None  # expired: list again
                        break
                    self._see(event["object"], deleted=event["type"] == "DELETED")
                    version = event["object"]["metadata"]["resourceVersion"]
                    if self.halt.is_set():
                        return
            except kubernetes.client.ApiException as error:
                if error.status != 410 and not self.halt.is_set():
                    raise
                version = None
            except (OSError, urllib3.exceptions.HTTPError):
                if self.halt.is_set():
                    return  # the control plane is going down
                time.sleep(0.5)  # the connection broke: watch again from the last version


# --- one run ---------------------------------------------------------------------------------------


@dataclass
class RunFigures:
    objects: int
    ready_s: float | None  # None: not every object was Ready before the timeout
    ready_count: int
    peak_rss_mib: float
    steady_rss_mib: float
    handler_failures: int
    pool_timeouts: int


def create_objects(api_client: kubernetes.client.ApiClient, namespace: str, count: int, workers: int) -> None:
    kubernetes.client.CoreV1Api(api_client).create_namespace({"metadata": {"name": namespace}})
    custom = kubernetes.client.CustomObjectsApi(api_client)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        list(
            pool.map(
                lambda index: custom.create_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, patch_body(f"p{index:05d}", errorSignature=f"E{index:05d}")
                ),
                range(count),
            )
        )


def measure(
    command: list[str],
    *,
    env: dict[str, str],
    custom: kubernetes.client.CustomObjectsApi,
    namespace: str,
    count: int,
    log_file: Path,
    settle: float,
    timeout: float,
) -> RunFigures:
    watch = ReadyWatch(custom, namespace, count)
    watch.start()
    with log_file.open("wb") as log:
        started = time.monotonic()
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    sampler = RssSampler(process.pid)
    sampler.start()
    try:
        ready_in_time = watch.all_ready.wait(timeout) if count else True
        ready_s = time.monotonic() - started if ready_in_time else None
        if process.poll() is not None:
            raise SystemExit(f"{command[2:4]} exited with {process.returncode}; log: {log_file}")
        time.sleep(settle)  # idle workers exit, the first figures pass has run
        steady = tree_rss_mib(process.pid)
    finally:
        sampler.halt.set()
        watch.halt.set()
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    text = log_file.read_text(errors="replace")
    return RunFigures(
        objects=count,
        ready_s=ready_s,
        ready_count=len(watch.ready),
        peak_rss_mib=sampler.peak,
        steady_rss_mib=steady,
        handler_failures=len(HANDLER_FAILURE.findall(text)),
        pool_timeouts=len(POOL_TIMEOUT.findall(text)),
    )


class World:
    def __init__(self, env: environment.DevEnvironment, tmp: Path, args: argparse.Namespace) -> None:
        self.env, self.tmp, self.args = env, tmp, args
        configuration = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(config_file=str(env.kubeconfig), client_configuration=configuration)
        configuration.connection_pool_maxsize = args.workers
        self.api_client = kubernetes.client.ApiClient(configuration)
        self.custom = kubernetes.client.CustomObjectsApi(self.api_client)

    def _database(self) -> str:
        name = f"scale_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(self.env.postgres.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.env.postgres.url(name)

    def run(self, kind: str, count: int) -> RunFigures:
        namespace = f"{kind}-{count}-{uuid.uuid4().hex[:6]}"
        create_objects(self.api_client, namespace, count, self.args.workers)
        env = {**os.environ, "KUBECONFIG": str(self.env.kubeconfig)}
        if kind == "operator":
            env["SELFHEAL_DATABASE_URL"] = self._database()
            command = [sys.executable, "-m", "selfheal", "operator", "-n", namespace]
        else:
            command = [sys.executable, str(ROOT / "bench" / "bare_kopf_operator.py"), namespace]
        return measure(
            command,
            env=env,
            custom=self.custom,
            namespace=namespace,
            count=count,
            log_file=self.tmp / f"{namespace}.log",
            settle=self.args.settle,
            timeout=self.args.timeout,
        )


# --- report ----------------------------------------------------------------------------------------


def _verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


def _row(label: str, figures: RunFigures, idle: RunFigures) -> str:
    ready = f"{figures.ready_s:.1f}" if figures.ready_s is not None else f"{figures.ready_count}/{figures.objects}"
    per_1000 = (figures.steady_rss_mib - idle.steady_rss_mib) / figures.objects * 1000
    return (
        f"{label:<10} {figures.objects:>7} {ready:>9} {figures.peak_rss_mib:>9.0f} {figures.steady_rss_mib:>9.0f} "
        f"{per_1000:>9.1f} {figures.handler_failures:>9} {figures.pool_timeouts:>9}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, nargs="+", default=[2000], help="backlog sizes, one run each")
    parser.add_argument("--workers", type=int, default=8, help="parallel API clients creating the backlog")
    parser.add_argument("--settle", type=float, default=20.0, help="seconds after all Ready before steady RSS")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for all Ready")
    parser.add_argument("--no-baseline", action="store_true", help="skip the bare kopf baseline runs")
    args = parser.parse_args()
    kinds = ["operator"] if args.no_baseline else ["operator", "kopf"]

    with tempfile.TemporaryDirectory(prefix="selfheal-scale-") as tmp:
        state_dir = Path(tmp) / "state"
        env = environment.up(state_dir=state_dir, crd_dir=ROOT / "crds")
        try:
            world = World(env, Path(tmp), args)
            idle = {kind: world.run(kind, 0) for kind in kinds}
            for kind in kinds:
                print(f"{kind} idle RSS over an empty namespace: {idle[kind].steady_rss_mib:.0f} MiB", flush=True)
            header = (
                f"{'process':<10} {'objects':>7} {'ready s':>9} {'peak MiB':>9} {'steady':>9} "
                f"{'MiB/1000':>9} {'failures':>9} {'pool t/o':>9}"
            )
            results = {}
            for count in args.objects:
                runs = {kind: world.run(kind, count) for kind in kinds}
                print(header)
                for kind in kinds:
                    print(_row(kind, runs[kind], idle[kind]), flush=True)
                results[str(count)] = _report(count, runs, idle)
        finally:
            environment.down(state_dir=state_dir)
    record(
        "operator_scale",
        {
            "command": "python bench/operator_scale.py " + " ".join(sys.argv[1:]),
            "idle_rss_mib": {kind: idle[kind].steady_rss_mib for kind in kinds},
            "runs": results,
            "table": [row for figures in results.values() for row in figures["table"]],
            "goals_at": GOAL_OBJECTS,
            "goals": {"ready_s": GOAL_READY_S, "peak_rss_mib": GOAL_PEAK_MIB, "pool_failures": 0},
        },
    )


def _report(count: int, runs: dict[str, RunFigures], idle: dict[str, RunFigures]) -> dict:
    operator = runs["operator"]
    ready_ok = operator.ready_s is not None and operator.ready_s <= GOAL_READY_S
    peak_ok = operator.peak_rss_mib <= GOAL_PEAK_MIB
    pool_ok = operator.pool_timeouts == 0
    scope = "" if count == GOAL_OBJECTS else f" (the goals are set for {GOAL_OBJECTS:,} objects)"
    print(f"goals at {count:,} objects{scope}:")
    print(f"  all Ready <= {GOAL_READY_S:.0f} s: {_verdict(ready_ok)}")
    print(f"  peak RSS <= {GOAL_PEAK_MIB:.0f} MiB: {_verdict(peak_ok)}")
    print(f"  no handler failure from pool exhaustion: {_verdict(pool_ok)}")
    figures: dict = {
        kind: {
            **asdict(run),
            "rss_mib_per_1000": (run.steady_rss_mib - idle[kind].steady_rss_mib) / count * 1000 if count else None,
        }
        for kind, run in runs.items()
    }
    figures["met"] = {"ready": ready_ok, "peak_rss": peak_ok, "no_pool_failures": pool_ok}
    baseline = runs.get("kopf")
    figures["table"] = _table_rows(count, operator, baseline, figures, ready_ok, peak_ok, pool_ok)
    if baseline is not None and baseline.ready_s and operator.ready_s:
        figures["ratio_to_kopf"] = {
            "ready": operator.ready_s / baseline.ready_s,
            "peak_rss": operator.peak_rss_mib / baseline.peak_rss_mib,
        }
        print(
            f"  over bare kopf: ready {operator.ready_s / baseline.ready_s:.2f}x, "
            f"peak RSS {operator.peak_rss_mib / baseline.peak_rss_mib:.2f}x",
            flush=True,
        )
    return figures


def _table_rows(count, operator, baseline, figures, ready_ok, peak_ok, pool_ok) -> list[dict]:
    """Rows for the README's table (hack/bench_table.py): value, same-run bare kopf, ratio, goal."""
    goal_here = count == GOAL_OBJECTS

    def row(figure, value, base, goal, met):
        ratio = f"{value / base:.2f}x" if isinstance(value, float) and base else None
        return {
            "figure": f"{figure}, {count:,} objects",
            "value": value,
            "baseline": base,
            "ratio": ratio,
            "goal": goal,
            "met": met if goal_here else None,
        }

    return [
        row(
            "seconds until all Ready",
            round(operator.ready_s, 1) if operator.ready_s else f"{operator.ready_count}/{count}",
            round(baseline.ready_s, 1) if baseline and baseline.ready_s else None,
            f"<= {GOAL_READY_S:.0f} s at {GOAL_OBJECTS:,}",
            ready_ok,
        ),
        row(
            "peak RSS MiB",
            round(operator.peak_rss_mib, 1),
            round(baseline.peak_rss_mib, 1) if baseline else None,
            f"<= {GOAL_PEAK_MIB:.0f} MiB at {GOAL_OBJECTS:,}",
            peak_ok,
        ),
        row(
            "steady RSS MiB per 1,000 objects",
            round(figures["operator"]["rss_mib_per_1000"], 1),
            round(figures["kopf"]["rss_mib_per_1000"], 1) if baseline else None,
            None,
            None,
        ),
        row("handler failures from pool exhaustion", operator.pool_timeouts, None, "0", pool_ok),
    ]


if __name__ == "__main__":
    main()
