"""Two operator replicas with leader election, as real processes against the real API server.

Exactly one replica acts; `kill -9` of the leader while a patch turns bad still gets the patch
switched off (by the standby, resuming the guard's state from the database, once); a rolling
restart of both replicas while patches are applied refuses no write.

Without a kubelet there is no Service in front of the webhook: a small TCP proxy that skips a
replica which does not accept connections stands in for it (as endpoints drop a terminating pod).
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import kubernetes
import psycopg
import pytest
import yaml

from selfheal.controller.admission import webhook_configuration
from selfheal.controller.webhook_certs import generate
from tests.support import OperatorProcess, Patches, new_namespace, own_world_fixtures, patch_body, wait_until


class Replicas:
    def __init__(self, *, devenv, database_url: str, namespace: str, directory: Path, extra: tuple[str, ...] = ()):
        self.devenv, self.namespace = devenv, namespace
        self.processes = [
            OperatorProcess(
                kubeconfig=devenv.kubeconfig,
                database_url=database_url,
                log_file=directory / f"operator-{index}.log",
                extra_args=("-n", namespace, "--leader-election", "--leader-election-namespace", namespace, *extra),
            )
            for index in range(2)
        ]
        self.coordination = kubernetes.client.CoordinationV1Api(
            kubernetes.config.new_client_from_config(config_file=str(devenv.kubeconfig))
        )

    def start(self) -> None:
        for process in self.processes:
            process.start()

    def stop(self) -> None:
        for process in self.processes:
            process.stop()

    def holder(self) -> str | None:
        try:
            lease = self.coordination.read_namespaced_lease("selfheal-operator", self.namespace)
        except kubernetes.client.ApiException:
            return None
        return lease.spec.holder_identity

    def leader(self) -> OperatorProcess:
        def found():
            holder = self.holder()
            return next(
                (p for p in self.processes if p.process and holder and holder.endswith(f"_{p.process.pid}")), None
            )

        return wait_until(found, timeout=30, what="a leader")


# A control plane of this module's own: the session's operator watches every namespace of the
# shared one, and two kopf operators on one object see each other's progress annotations (the
# second takes a new object as already handled). In production one operator set runs per cluster.
devenv, admin_database_url, kube_client, custom_api = own_world_fixtures("selfheal-ha-devenv-")


@pytest.fixture()
def world(devenv, admin_database_url, kube_client, custom_api, tmp_path):
    from tests.conftest import _new_database

    database_url = _new_database(admin_database_url, devenv, "ha")
    namespace = new_namespace(kube_client, "ha")
    return {
        "database_url": database_url,
        "namespace": namespace,
        "patches": Patches(custom_api, namespace),
        "directory": tmp_path,
    }


def _row(database_url: str, namespace: str, name: str) -> dict | None:
    with psycopg.connect(database_url) as conn:
        cursor = conn.execute(
            "SELECT id, active, deactivation_reason FROM sdk_self_healing_registry "
            "WHERE source_namespace = %s AND source_name = %s",
            (namespace, name),
        )
        row = cursor.fetchone()
    return None if row is None else {"id": row[0], "active": row[1], "reason": row[2]}


def _bad_traffic(database_url: str, patch_id: str, stop: threading.Event) -> None:
    """A patch turning bad: ten applications a second, half of them rolled back, as SDKs report them."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        while not stop.is_set():
            conn.execute(
                """INSERT INTO sdk_patch_applications (patch_id, developer_id, sdk_language, error_encountered,
                                                       success, rollback_triggered, applied_at)
                   SELECT %s, 'dev-' || i, 'node', 'ECONNREFUSED', i %% 2 = 0, i %% 2 = 1, now()
                   FROM generate_series(0, 9) AS i""",
                (patch_id,),
            )
            time.sleep(1.0)


def _time_to_deactivation(
    world, replicas: Replicas, name: str, *, kill_leader_after: float | None
) -> tuple[float, float | None]:
    """Seconds from the first bad application to the registry row being off; and, when the leader
    was killed, seconds from the kill to the standby holding the lease."""
    patches, database_url = world["patches"], world["database_url"]
    patches.create(name)
    # Our replicas' own registry: in a full run the session's operator also watches this namespace.
    row = wait_until(lambda: _row(database_url, world["namespace"], name), timeout=60, what="the row synced")
    patch_id = row["id"]
    stop = threading.Event()
    feeder = threading.Thread(target=_bad_traffic, args=(database_url, patch_id, stop), daemon=True)
    started = time.monotonic()
    feeder.start()
    takeover = None
    try:
        if kill_leader_after is not None:
            time.sleep(kill_leader_after)
            leader = replicas.leader()
            killed_at = time.monotonic()
            leader.process.kill()  # SIGKILL: no release, no goodbye
            leader.process.wait(timeout=10)
            survivor = next(p for p in replicas.processes if p is not leader)
            wait_until(
                lambda: (replicas.holder() or "").endswith(f"_{survivor.process.pid}"),
                timeout=30,
                what="the standby taking the lease",
            )
            takeover = time.monotonic() - killed_at
        wait_until(
            lambda: _row(database_url, world["namespace"], name)["active"] is False,
            timeout=90,
            what="the registry row switched off",
        )
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        feeder.join(timeout=10)
    row = _row(database_url, world["namespace"], name)
    assert row["reason"] == "AutoDeactivated"
    with psycopg.connect(database_url) as conn:
        guard_rows = conn.execute(
            "SELECT count(*) FROM sdk_patch_audit WHERE patch_id = %s AND action = 'guard'", (patch_id,)
        ).fetchone()[0]
    assert guard_rows == 1  # switched off once, by one replica
    return elapsed, takeover


def test_one_leader_acts_and_a_killed_leader_is_replaced_while_a_patch_turns_bad(world, devenv, record_property):
    replicas = Replicas(
        devenv=devenv, database_url=world["database_url"], namespace=world["namespace"], directory=world["directory"]
    )
    replicas.start()
    try:
        leader = replicas.leader()
        standby = next(p for p in replicas.processes if p is not leader)
        assert _health(standby) == "standby" and _health(leader) == "leading"

        without_failover, _ = _time_to_deactivation(world, replicas, "bad-no-failover", kill_leader_after=None)
        with_failover, takeover = _time_to_deactivation(world, replicas, "bad-failover", kill_leader_after=1.0)
    finally:
        replicas.stop()
    print(
        f"\nbad traffic -> registry row off: {without_failover:.1f} s without failover, "
        f"{with_failover:.1f} s with the leader killed 1 s in (standby leading {takeover:.1f} s after the kill)"
    )
    record_property("deactivation_seconds_without_failover", round(without_failover, 1))
    record_property("deactivation_seconds_with_failover", round(with_failover, 1))
    record_property("takeover_seconds", round(takeover, 1))
    # No wall-clock bound here: the lease's timing is proven on a controlled clock in
    # tests/unit/test_lease.py; the takeover seconds above are a figure, printed and recorded.


def _health(process: OperatorProcess) -> str:
    import json
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{process.port}/healthz", timeout=5) as response:
        return json.load(response)["status"]


class FailoverProxy:
    """Stands in for the webhook's Service: each connection goes to the first backend that accepts it.
    `backends()`: the replicas' webhook ports as they are now (a restarted replica binds anew)."""

    def __init__(self, backends: Callable[[], list[int]]) -> None:
        self.backends = backends
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        for port in self.backends():
            try:
                upstream = socket.create_connection(("127.0.0.1", port), timeout=2)
                break
            except OSError:
                continue
        else:
            client.close()
            return
        for source, target in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pipe, args=(source, target), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, target):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self._server.close()


def test_a_rolling_restart_refuses_no_patch_write(world, devenv, kube_client):
    certificates = generate(world["directory"] / "certs", hosts=["127.0.0.1"])
    replicas = Replicas(
        devenv=devenv, database_url=world["database_url"], namespace=world["namespace"], directory=world["directory"]
    )
    for process in replicas.processes:
        process.port_options += ("--webhook-port",)
        process.extra_args += (
            "--webhook-host",
            "127.0.0.1",
            "--webhook-cert",
            str(certificates.cert_file),
            "--webhook-key",
            str(certificates.key_file),
            "--webhook-ca",
            str(certificates.ca_file),
        )
    proxy = FailoverProxy(lambda: [p.ports["--webhook-port"] for p in replicas.processes if p.ports])
    name = f"selfheal-ha-{uuid.uuid4().hex[:8]}"
    admission = kubernetes.client.AdmissionregistrationV1Api(kube_client)
    admission.create_validating_webhook_configuration(
        webhook_configuration(
            name=name,
            url=f"https://127.0.0.1:{proxy.port}/patch-code",
            ca_bundle=certificates.ca_file.read_bytes(),
            namespaces=[world["namespace"]],
            timeout_seconds=5,
        )
    )
    replicas.start()
    failures, applied, stop = [], [], threading.Event()

    def apply_in_a_loop():
        index = 0
        while not stop.is_set():
            document = yaml.safe_dump(patch_body(f"rolling-{index}", description=f"apply {index}"))
            result = subprocess.run(
                [
                    str(devenv.kubectl),
                    "--kubeconfig",
                    str(devenv.kubeconfig),
                    "apply",
                    "-n",
                    world["namespace"],
                    "-f",
                    "-",
                ],
                input=document,
                capture_output=True,
                text=True,
                timeout=30,
            )
            (applied if result.returncode == 0 else failures).append(result.stderr.strip() or index)
            index += 1

    try:
        assert _refused_through_the_proxy(devenv, world["namespace"])
        writer = threading.Thread(target=apply_in_a_loop, daemon=True)
        writer.start()
        for process in replicas.processes:  # one at a time, as a Deployment's rolling update does
            time.sleep(2)
            process.stop()
            process.start()
            wait_until(lambda: _health(process) in ("standby", "leading"), what="the restarted replica")
        time.sleep(2)
        stop.set()
        writer.join(timeout=60)
        assert _refused_through_the_proxy(devenv, world["namespace"])  # still validating after the rollout
    finally:
        stop.set()
        replicas.stop()
        proxy.close()
        admission.delete_validating_webhook_configuration(name)
    assert not failures, failures
    assert len(applied) >= 5


def _refused_through_the_proxy(devenv, namespace: str) -> bool:
    bad = yaml.safe_dump(patch_body("evil", patchCode='this.baseUrl = "https://api.molam.com.evil.com";'))
    result = subprocess.run(
        [
            str(devenv.kubectl),
            "--kubeconfig",
            str(devenv.kubeconfig),
            "apply",
            "--dry-run=server",
            "-n",
            namespace,
            "-f",
            "-",
        ],
        input=bad,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return result.returncode != 0 and "denied the request" in result.stderr
