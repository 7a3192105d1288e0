"""Deactivation latency through the real path: SDK -> API -> PostgreSQL -> guard -> catalog -> SDK.

Every part runs as shipped, with its default settings: `selfheal operator` (guard interval,
registry poll) and `selfheal api` with no tuning flag, the Python SDK (`molam`, report interval
1 s) against a local payments server, one SelfHealPatch per trial created through the API server.

A trial: its patch (a fallback API key for a 401 of its own) heals calls for a while (each call
from a fresh client, as many application instances would: one lookup, one report each), then the
fallback key is revoked: from then on every call fails, the patch is applied, the retry fails, the
SDK rolls back and reports it. The trial measures the seconds from that moment to the first call
the SDK makes without being served the patch (the registry answered that it has none), and, for
the breakdown, to the registry row turning inactive. Trials run in waves of concurrent trials
(different patches), each at 10 calls a second.

Baseline: the runbook's alert on the rollback rate (`for: 10m`) alone cannot fire before 600 s.
Goal: p95 <= 10 s over >= 30 trials.

Usage: python bench/deactivation_bench.py [--trials 30] [--concurrent 6] [--healthy-seconds 10] [--rate 10]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from cryptography.hazmat.primitives import serialization  # noqa: E402
from results import record  # noqa: E402

from molam import ApiError, MolamClient  # noqa: E402
from molam.transport import HttpTransport  # noqa: E402
from selfheal.core.signing import key_id  # noqa: E402
from selfheal.devenv import environment  # noqa: E402
from selfheal.registry.tokens import create_token  # noqa: E402
from tests.sdk.payments_server import PaymentsServer  # noqa: E402
from tests.support import Patches, free_port, wait_until  # noqa: E402

GOAL_P95_S = 10.0
ALERT_FOR_S = 600.0  # the runbook's PrometheusRule: `for: 10m` on the rollback rate
TIMEOUT_S = 120.0  # a trial not switched off by then counts as this (and as not met)


class TrialPayments(PaymentsServer):
    """Trial i's primary key `pk_primary_i` is revoked (401 `key_revoked_ti`); its fallback key is
    accepted until `revoked(i)`, then refused with the same error."""

    def __init__(self) -> None:
        super().__init__()
        self.bad: set[int] = set()
        self.revoked_at: dict[int, float] = {}  # monotonic seconds

    def revoke(self, trial: int) -> None:
        with self.lock:
            self.bad.add(trial)
            self.revoked_at[trial] = time.monotonic()

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict, dict]:
        key = headers.get("authorization", "").removeprefix("Bearer ")
        kind, _, trial = key.rpartition("_")
        refused = {"error": f"key_revoked_t{trial:0>3}", "message": "this API key has been revoked"}
        if kind == "pk_primary" or (kind == "pk_fallback" and int(trial) in self.bad):
            return 401, refused, {}
        if kind == "pk_fallback" and method == "POST" and path == "/v1/payments":
            return 201, {"id": f"pay_{uuid.uuid4().hex[:12]}", "status": "succeeded"}, {}
        return 404, {"error": "not_found", "message": "no such route"}, {}


class World:
    """The control plane, PostgreSQL, the operator, the API and the payments server."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.env = environment.up(state_dir=tmp / "state", crd_dir=ROOT / "crds")
        self.url = self.env.postgres.url("molam_connect")
        self.processes: list[subprocess.Popen] = []
        base = {**os.environ, "KUBECONFIG": str(self.env.kubeconfig), "SELFHEAL_DATABASE_URL": self.url}
        self._run("operator.log", ["operator"], env=base)  # every setting its default
        key = tmp / "signing.pem"
        pem = self._selfheal("keygen", "--out", str(key), env=base)
        self.trusted = {key_id(serialization.load_pem_public_key(pem.encode())): pem}
        port = free_port()
        self.api = f"http://127.0.0.1:{port}"
        self._run(
            "api.log",
            ["api", "--host", "127.0.0.1", "--port", str(port)],
            env={**base, "SELFHEAL_SIGNING_KEY_FILE": str(key)},
        )
        wait_until(self._ready, timeout=60, what="selfheal api ready")

    def _selfheal(self, *args: str, env: dict) -> str:
        return subprocess.run(
            [sys.executable, "-m", "selfheal", *args], env=env, check=True, capture_output=True, text=True
        ).stdout.strip()

    def _run(self, log: str, args: list[str], *, env: dict) -> None:
        self.processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "selfheal", *args],
                env=env,
                stdout=(self.tmp / log).open("wb"),
                stderr=subprocess.STDOUT,
            )
        )

    def _ready(self) -> bool:
        for process in self.processes:
            if process.poll() is not None:
                raise SystemExit(f"{process.args} exited:\n" + "\n".join(self.logs()))
        try:
            with urllib.request.urlopen(self.api + "/readyz", timeout=1):
                return True
        except OSError:
            return False

    def logs(self) -> list[str]:
        return [path.read_text(errors="replace")[-3000:] for path in sorted(self.tmp.glob("*.log"))]

    def token(self, developer: str) -> str:
        """A developer token, as `selfheal token create` makes it (in this process: no interpreter start per trial)."""
        return create_token(self.url, developer_id=developer, role="developer")[1]

    def close(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        environment.down(state_dir=self.tmp / "state")


class CountingTransport(HttpTransport):
    """The SDK's own transport, counting the registry's answers that were not 2xx (or no answer):
    what delays a trial (a refused report batch is sent again only after the SDK's back-off)."""

    def __init__(self) -> None:
        super().__init__()
        self.refused: Counter[str] = Counter()

    def exchange(self, url: str, **kwargs):  # type: ignore[no-untyped-def]
        registry = "/api/dev/self-heal" in url
        try:
            response = super().exchange(url, **kwargs)
        except Exception as error:
            if registry:
                self.refused[f"{url.rsplit('/', 1)[1]} {type(error).__name__}"] += 1
            raise
        if registry and response.status >= 300 and response.status != 404:
            self.refused[f"{url.rsplit('/', 1)[1]} {response.status}"] += 1
        return response


def client(
    world: World, payments: TrialPayments, trial: int, token: str, applied: list, transport: HttpTransport | None = None
) -> MolamClient:
    return MolamClient(
        transport=transport,
        api_key=f"pk_primary_{trial}",
        secret_key=payments.behaviour.secret_key,
        base_url=payments.url,
        selfheal_url=world.api,
        selfheal_token=token,
        trusted_keys=world.trusted,
        fallback_credentials={"MOLAM_FALLBACK_API_KEY": f"pk_fallback_{trial}"},
        on_patch_applied=applied.append,
    )


def run_trial(world: World, payments: TrialPayments, trial: int, patch_id: str, *, healthy: float, rate: float) -> dict:
    """Seconds from the fallback key's revocation to the first call the SDK made unpatched."""
    token = world.token(f"deactivation-{trial}")
    started, calls = time.monotonic(), 0
    while time.monotonic() - started < healthy:  # healthy: fresh clients, each healed once
        calls += 1
        applied: list = []
        with client(world, payments, trial, token, applied) as fresh:
            fresh.create_payment(amount=5000, currency="XOF", country="SN")
        if [patch.id for patch in applied] != [patch_id]:
            raise SystemExit(f"trial {trial}: healthy call healed by {applied}, not {patch_id}")
        time.sleep(max(0.0, started + calls / rate - time.monotonic()))
    applied = []
    transport = CountingTransport()
    with client(world, payments, trial, token, applied, transport) as sdk:
        payments.revoke(trial)
        turned, calls, served_once, spurious = time.monotonic(), 0, False, 0
        while True:
            served = len(applied)
            try:
                sdk.create_payment(amount=5000, currency="XOF", country="SN")
            except ApiError:
                pass  # every call fails now: healed and rolled back, or unpatched
            calls += 1
            now = time.monotonic()
            if [patch for patch in applied[served:] if patch.id == patch_id]:
                served_once = True
            elif not served_once:
                raise SystemExit(f"trial {trial}: the first failing call was not healed: nothing to measure")
            elif still_served(world, token, trial, patch_id):
                spurious += 1  # not healed for another reason (the registry busy, a timeout): not the end
            else:
                return {
                    "trial": trial,
                    "patch": patch_id,
                    "sdk_s": now - turned,
                    "bad_calls": calls,
                    "unhealed_while_served": spurious,
                    "registry_refusals": dict(transport.refused),
                }
            if now - turned > TIMEOUT_S:
                return {
                    "trial": trial,
                    "patch": patch_id,
                    "sdk_s": None,
                    "bad_calls": calls,
                    "unhealed_while_served": spurious,
                    "registry_refusals": dict(transport.refused),
                }
            time.sleep(max(0.0, turned + calls / rate - time.monotonic()))


def still_served(world: World, token: str, trial: int, patch_id: str) -> bool:
    """Whether the registry still serves the trial's patch: the SDK went without it, but why?"""
    request = urllib.request.Request(
        world.api + "/api/dev/self-heal",
        data=json.dumps(
            {
                "sdk": "python",
                "error": f"401 Unauthorized: key_revoked_t{trial:03d}",
                "status": 401,
                "code": f"key_revoked_t{trial:03d}",
            }
        ).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)["patch"]["id"] == patch_id
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return False
        raise


def watch_registry(
    url: str, turned: Callable[[], list[str]], inactive_at: dict[str, float], stop: threading.Event
) -> None:
    """When each turned patch's registry row went inactive (polled every 0.25 s), for the breakdown."""
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            stopping = stop.is_set()  # one more look after the last trial
            watched = [patch for patch in turned() if patch not in inactive_at]
            if watched:
                for (patch_id,) in conn.execute(
                    "SELECT id FROM sdk_self_healing_registry WHERE id = ANY(%s) AND NOT active", (watched,)
                ):
                    inactive_at[patch_id] = time.monotonic()
            if stopping:
                return
            stop.wait(0.25)


def percentile(values: list[float], share: float) -> float:
    """Nearest rank: the smallest value at or above `share` of the samples."""
    ordered = sorted(values)
    return ordered[max(0, -(-int(share * 1000) * len(ordered) // 1000) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--concurrent", type=int, default=6, help="trials running at once (different patches)")
    parser.add_argument("--healthy-seconds", type=float, default=10.0, help="healed calls before the key is revoked")
    parser.add_argument("--rate", type=float, default=10.0, help="calls per second per trial")
    args = parser.parse_args()
    logging.getLogger("molam").setLevel(logging.ERROR)  # a warning per healed call otherwise

    import kubernetes

    tmp = Path(tempfile.mkdtemp(prefix="selfheal-deactivation-bench-"))
    world = World(tmp)
    results: list[dict] = []
    try:
        api = kubernetes.client.CustomObjectsApi(
            kubernetes.config.new_client_from_config(config_file=str(world.env.kubeconfig))
        )
        namespace = f"deactivation-{uuid.uuid4().hex[:6]}"
        kubernetes.client.CoreV1Api(api.api_client).create_namespace({"metadata": {"name": namespace}})
        patches = Patches(api, namespace)
        sample = {
            "sdkLanguage": "python",
            "patchCode": 'self.use_fallback_credential("MOLAM_FALLBACK_API_KEY")',
            "rollbackCode": "self.use_primary_credential()",
            "description": "fallback API key",
            "severity": "critical",
        }
        for trial in range(args.trials):
            patches.create(f"trial-{trial}", errorSignature=f"key_revoked_t{trial:03d}", **sample)
        ids = {}
        with psycopg.connect(world.url) as conn:
            for trial in range(args.trials):
                patches.wait_condition(f"trial-{trial}", "Active", status="True", timeout=120)
                ids[trial] = conn.execute(
                    "SELECT id FROM sdk_self_healing_registry WHERE source_namespace = %s AND source_name = %s",
                    (namespace, f"trial-{trial}"),
                ).fetchone()[0]
        print(
            f"{args.trials} patches Active; trials in waves of {args.concurrent}, {args.rate:g} calls/s each",
            flush=True,
        )

        inactive_at: dict[str, float] = {}
        stop = threading.Event()
        random.seed(7)
        with TrialPayments() as payments:

            def turned() -> list[str]:
                return [ids[trial] for trial in list(payments.revoked_at)]

            watcher = threading.Thread(target=watch_registry, args=(world.url, turned, inactive_at, stop), daemon=True)
            watcher.start()
            for first in range(0, args.trials, args.concurrent):
                wave = list(range(first, min(first + args.concurrent, args.trials)))
                outcome: dict[int, dict] = {}

                def one(trial: int) -> None:
                    # Jittered, so that revocations fall anywhere in the guard's cycle.
                    healthy = args.healthy_seconds + random.uniform(0, 2)
                    outcome[trial] = run_trial(world, payments, trial, ids[trial], healthy=healthy, rate=args.rate)

                threads = [threading.Thread(target=one, args=(trial,)) for trial in wave]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                for trial in wave:
                    result = outcome.get(trial)
                    if result is None:
                        raise SystemExit(f"trial {trial} failed:\n" + "\n".join(world.logs()))
                    results.append(result)
                    notes = [f"{result['bad_calls']} failing calls"]
                    if result["unhealed_while_served"]:
                        notes.append(f"{result['unhealed_while_served']} unhealed while served")
                    if result["registry_refusals"]:
                        notes.append(f"registry answers not 2xx: {result['registry_refusals']}")
                    print(
                        f"   trial {trial:2d}: SDK no longer served after {_s(result['sdk_s'])} ({'; '.join(notes)})",
                        flush=True,
                    )
            stop.set()
            watcher.join()
            for result in results:
                revoked, patch = payments.revoked_at[result["trial"]], result["patch"]
                result["registry_s"] = inactive_at[patch] - revoked if patch in inactive_at else None
    finally:
        world.close()

    sdk = [r["sdk_s"] if r["sdk_s"] is not None else TIMEOUT_S for r in results]
    registry = [r["registry_s"] for r in results if r["registry_s"] is not None]
    p50, p95, worst = percentile(sdk, 0.5), percentile(sdk, 0.95), max(sdk)
    met = p95 <= GOAL_P95_S and all(r["sdk_s"] is not None for r in results)
    print(
        f"\nseconds from a patch turning bad to the SDK no longer served ({len(sdk)} trials, default settings):"
        f" p50 {p50:.1f}  p95 {p95:.1f}  max {worst:.1f}"
    )
    print(f"   samples: {' '.join(f'{value:.1f}' for value in sorted(sdk))}")
    if registry:
        print(
            f"   registry row inactive: p50 {percentile(registry, 0.5):.1f}  p95 {percentile(registry, 0.95):.1f}"
            f"  ({len(registry)} trials)"
        )
    refusals: Counter[str] = Counter()
    for r in results:
        refusals.update(r["registry_refusals"])
    print(f"   registry answers not 2xx to the failing-phase SDKs (lookups 404 aside): {dict(refusals) or 'none'}")
    unhealed = sum(r["unhealed_while_served"] for r in results)
    print(f"   calls unhealed while the registry still served the patch (not counted as the end): {unhealed}")
    print(f"   baseline: the runbook's alert alone, for: 10m -> >= {ALERT_FOR_S:.0f} s")
    print(f"   goal p95 <= {GOAL_P95_S:.0f} s: {'MET' if met else 'NOT MET'}")
    record(
        "deactivation",
        {
            "command": "python bench/deactivation_bench.py " + " ".join(sys.argv[1:]),
            "trials": len(sdk),
            "sdk_seconds": sorted(sdk),
            "p50_s": p50,
            "p95_s": p95,
            "max_s": worst,
            "registry_p50_s": percentile(registry, 0.5) if registry else None,
            "unhealed_while_served": unhealed,
            "registry_refusals": dict(refusals),
            "baseline_s": ALERT_FOR_S,
            "met": met,
            "table": [
                {
                    "figure": f"deactivation latency, SDK to SDK ({len(sdk)} trials)",
                    "value": f"p95 {p95:.1f} s (p50 {p50:.1f}, max {worst:.1f})",
                    "baseline": f"{ALERT_FOR_S:.0f} s (runbook alert, for: 10m)",
                    "ratio": f"{p95 / ALERT_FOR_S:.3f}x",
                    "goal": f"p95 <= {GOAL_P95_S:.0f} s",
                    "met": met,
                }
            ],
        },
    )


def _s(value: float | None) -> str:
    return "never" if value is None else f"{value:5.1f} s"


if __name__ == "__main__":
    main()
