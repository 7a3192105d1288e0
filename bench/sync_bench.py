"""Sync benchmark: N SelfHealPatch objects applied -> seconds until every registry row is synced.

Runs on the real local control plane and an embedded PostgreSQL (its own state dir, so it does
not disturb `selfheal dev up`). Prints, for each N:
  - create:  seconds to create the N objects through the API server (the baseline: no sync
             can finish before its object exists, measured in the same run);
  - synced:  seconds from the first create until the registry holds every row;
  - ratio:   synced / create, the figure to compare across machines;
  - memory:  the operator's resident set, idle before the run and at its peak (VmHWM).

Usage: python bench/sync_bench.py [--counts 100 1000] [--workers 8]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import sys
import tempfile
import time
import uuid
from pathlib import Path

import kubernetes
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from selfheal.devenv import environment  # noqa: E402
from tests.support import OperatorProcess, patch_body  # noqa: E402


def memory_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def run(count: int, *, custom, core, database_url: str, workers: int, operator: OperatorProcess) -> dict:
    namespace = f"bench-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": namespace}})
    bodies = [patch_body(f"p{index:05d}", errorSignature=f"E{index:05d}") for index in range(count)]
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        list(
            pool.map(
                lambda body: custom.create_namespaced_custom_object(
                    "selfheal.molam.io", "v1alpha1", namespace, "selfhealpatches", body
                ),
                bodies,
            )
        )
    created = time.monotonic() - started
    with psycopg.connect(database_url, autocommit=True) as conn:
        while True:
            synced = conn.execute(
                "SELECT count(*) FROM sdk_self_healing_registry WHERE source_namespace = %s", (namespace,)
            ).fetchone()[0]
            if synced >= count:
                break
            if time.monotonic() - started > 600:
                raise SystemExit(f"only {synced}/{count} rows synced after 600 s")
            time.sleep(0.05)
    return {
        "count": count,
        "create_s": created,
        "synced_s": time.monotonic() - started,
        "peak_rss_mib": memory_kib(operator.process.pid, "VmHWM") / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counts", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--workers", type=int, default=8, help="parallel API clients creating objects")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="selfheal-bench-") as tmp:
        state_dir = Path(tmp) / "state"
        env = environment.up(state_dir=state_dir, crd_dir=ROOT / "crds")
        try:
            api = kubernetes.config.new_client_from_config(config_file=str(env.kubeconfig))
            custom, core = kubernetes.client.CustomObjectsApi(api), kubernetes.client.CoreV1Api(api)
            operator = OperatorProcess(
                kubeconfig=env.kubeconfig, database_url=env.database_url, log_file=Path(tmp) / "operator.log"
            )
            operator.start()
            idle = memory_kib(operator.process.pid, "VmRSS") / 1024
            print(f"operator idle RSS: {idle:.0f} MiB")
            print(f"{'objects':>8} {'create s':>9} {'synced s':>9} {'ratio':>6} {'rows/s':>7} {'peak RSS MiB':>13}")
            try:
                for count in args.counts:
                    result = run(
                        count,
                        custom=custom,
                        core=core,
                        database_url=env.database_url,
                        workers=args.workers,
                        operator=operator,
                    )
                    print(
                        f"{count:>8} {result['create_s']:>9.2f} {result['synced_s']:>9.2f} "
                        f"{result['synced_s'] / result['create_s']:>6.2f} {count / result['synced_s']:>7.0f} "
                        f"{result['peak_rss_mib']:>13.0f}",
                        flush=True,
                    )
            finally:
                operator.stop()
        finally:
            environment.down(state_dir=state_dir)


if __name__ == "__main__":
    main()
