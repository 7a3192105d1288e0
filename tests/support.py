"""Helpers shared by the tests: polling, SelfHealPatch CRUD, registry reads."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import kubernetes
import psycopg
import pytest
from psycopg.rows import dict_row

from selfheal.core.resource import GROUP, KIND, PLURAL, VERSION
from selfheal.devenv import environment

ROOT = Path(__file__).resolve().parents[1]

DEFAULT_TIMEOUT = 30.0


def wait_until(predicate: Callable[[], Any], *, timeout: float = DEFAULT_TIMEOUT, what: str = "condition") -> Any:
    """Poll `predicate` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")


def new_namespace(kube_client: kubernetes.client.ApiClient, prefix: str) -> str:
    """A namespace of a fresh name: without a controller-manager, deleted ones never finish terminating."""
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    kubernetes.client.CoreV1Api(kube_client).create_namespace({"metadata": {"name": name}})
    return name


def free_port() -> int:
    """A port free right now, for a child that cannot bind port 0 and report it; whoever uses it must
    retry when the child fails to bind it (another process may take it first): see OperatorProcess."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def refused_port() -> Iterator[int]:
    """A loopback port bound and never listening, held for the `with`: every connection is refused
    and no other process can start listening there meanwhile (a port picked free and released could)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def patch_body(name: str, **spec: Any) -> dict:
    base = {
        "sdkLanguage": "node",
        "errorSignature": "ECONNREFUSED",
        "patchCode": 'this.baseUrl = "https://api-backup.molam.com"; console.warn("⚡ Fallback to backup API");',
        "rollbackCode": 'this.baseUrl = "https://api.molam.com";',
        "description": "Fallback vers API de backup",
        "severity": "high",
    }
    merged = {key: value for key, value in {**base, **spec}.items() if value is not None}
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "metadata": {"name": name}, "spec": merged}


class Patches:
    """SelfHealPatch objects in one namespace, through the real API server."""

    def __init__(self, api: kubernetes.client.CustomObjectsApi, namespace: str) -> None:
        self.api, self.namespace = api, namespace

    def create(self, name: str, **spec: Any) -> dict:
        return self.api.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, patch_body(name, **spec)
        )

    def get(self, name: str) -> dict:
        return self.api.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)

    def exists(self, name: str) -> bool:
        try:
            self.get(name)
        except kubernetes.client.ApiException as error:
            if error.status == 404:
                return False
            raise
        return True

    def patch_spec(self, name: str, **spec: Any) -> dict:
        return self.api.patch_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name, {"spec": spec})

    def patch_status(self, name: str, status: dict) -> dict:
        return self.api.patch_namespaced_custom_object_status(
            GROUP, VERSION, self.namespace, PLURAL, name, {"status": status}
        )

    def delete(self, name: str) -> None:
        self.api.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)

    def condition(self, name: str, type: str) -> dict | None:
        status = self.get(name).get("status") or {}
        return next((c for c in status.get("conditions") or [] if c["type"] == type), None)

    def wait_condition(
        self,
        name: str,
        type: str,
        *,
        status: str,
        reason: str | None = None,
        generation: int | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> dict:
        def matches():
            condition = self.condition(name, type)
            if condition is None or condition["status"] != status:
                return None
            if reason is not None and condition.get("reason") != reason:
                return None
            if generation is not None and condition.get("observedGeneration") != generation:
                return None
            return condition

        return wait_until(matches, timeout=timeout, what=f"{self.namespace}/{name} {type}={status} ({reason})")


class Registry:
    """Read-only view of the registry for assertions."""

    def __init__(self, url: str) -> None:
        self.url = url

    def _query(self, sql: str, params: tuple = ()) -> list[dict]:
        with psycopg.connect(self.url, autocommit=True, row_factory=dict_row) as conn:
            return conn.execute(sql, params).fetchall()

    def rows(self, namespace: str, name: str) -> list[dict]:
        return self._query(
            "SELECT *, xmin::text AS tuple_version FROM sdk_self_healing_registry"
            " WHERE source_namespace = %s AND source_name = %s",
            (namespace, name),
        )

    def row(self, namespace: str, name: str) -> dict | None:
        rows = self.rows(namespace, name)
        assert len(rows) <= 1, rows
        return rows[0] if rows else None

    def history(self, patch_id: str) -> list[dict]:
        return self._query("SELECT * FROM sdk_patch_versions WHERE patch_id = %s ORDER BY revision", (patch_id,))

    def audit(self, patch_id: str) -> list[dict]:
        return self._query("SELECT * FROM sdk_patch_audit WHERE patch_id = %s ORDER BY id", (patch_id,))

    def execute(self, sql: str, params: tuple = ()) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql, params)

    def wait_row(
        self,
        namespace: str,
        name: str,
        predicate: Callable[[dict], bool] = lambda row: True,
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> dict:
        def matches():
            row = self.row(namespace, name)
            return row if row is not None and predicate(row) else None

        return wait_until(matches, timeout=timeout, what=f"registry row for {namespace}/{name}")


class PortTaken(Exception):
    """The child could not bind a port it was given: another process took it after we picked it."""


class OperatorProcess:
    """`selfheal operator` as a real subprocess against the test control plane and database.

    Its ports (`port_options`: the probes' always, `--metrics-port` or `--webhook-port` when asked)
    are options where 0 means off, so they cannot be left to the child: each is picked free here,
    and when the child fails to bind one (another process took it in between), it starts again on
    fresh ports. The probes are trusted only once the child's own log says it serves them.
    """

    def __init__(
        self,
        *,
        kubeconfig: Path,
        database_url: str,
        log_file: Path,
        extra_args: tuple[str, ...] = (),
        port_options: tuple[str, ...] = (),
    ) -> None:
        self.kubeconfig, self.database_url, self.log_file = kubeconfig, database_url, log_file
        self.extra_args = extra_args
        self.port_options = ("--liveness-port", *port_options)
        self.process: subprocess.Popen | None = None
        self.ports: dict[str, int] = {}
        self._log_offset = 0

    @property
    def port(self) -> int:
        """The probes' port (/healthz, /readyz)."""
        return self.ports["--liveness-port"]

    def start(self, *, timeout: float = 60.0, attempts: int = 3) -> None:
        for _ in range(attempts):
            self.ports = {option: free_port() for option in self.port_options}
            self._log_offset = self.log_file.stat().st_size if self.log_file.exists() else 0
            env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "SELFHEAL_DATABASE_URL": self.database_url}
            ports = [part for option, port in self.ports.items() for part in (option, str(port))]
            with self.log_file.open("ab") as log:
                self.process = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "selfheal",
                        "operator",
                        "--registry-poll-interval",
                        "0.5",
                        *ports,
                        *self.extra_args,
                    ],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            try:
                wait_until(self._healthy, timeout=timeout, what=f"operator liveness (log: {self.log_file})")
                return
            except PortTaken:
                continue
        raise AssertionError(f"operator could not bind its ports in {attempts} attempts:\n{self.log_tail()}")

    def _this_run_log(self) -> str:
        with self.log_file.open("rb") as log:
            log.seek(self._log_offset)
            return log.read().decode(errors="replace")

    def _healthy(self) -> bool:
        assert self.process is not None
        if "address already in use" in self._this_run_log().lower():
            # The probes and the webhook fail the start; the metrics (kopf's startup) retry in a minute.
            self.process.kill()
            self.process.wait(timeout=10)
            raise PortTaken()
        if self.process.poll() is not None:
            raise AssertionError(f"operator exited with {self.process.returncode}:\n{self.log_tail()}")
        if f"probes serving on http://0.0.0.0:{self.port} " not in self._this_run_log():
            return False  # not bound by our child yet: whatever answers there may be another process
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    def metric(self, name: str) -> float:
        """The sum of a metric's samples on the operator's /metrics (needs `--metrics-port` in port_options)."""
        from prometheus_client.parser import text_string_to_metric_families

        url = f"http://127.0.0.1:{self.ports['--metrics-port']}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            families = text_string_to_metric_families(response.read().decode())
            return sum(sample.value for family in families for sample in family.samples if sample.name == name)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])


@contextlib.contextmanager
def own_world(prefix: str) -> Iterator[environment.DevEnvironment]:
    """A kube-apiserver, etcd and PostgreSQL of their own, the CRD installed; all gone afterwards.

    Not under pytest's basetemp: PostgreSQL runs as another user when we are root and needs to
    traverse the path, and every pytest session resets its basetemp's parent to mode 0700.
    """
    state_dir = Path(tempfile.mkdtemp(prefix=prefix))
    env = environment.up(state_dir=state_dir, crd_dir=ROOT / "crds")
    try:
        yield env
    finally:
        environment.down(state_dir=state_dir)
        shutil.rmtree(state_dir, ignore_errors=True)


def own_world_fixtures(prefix: str) -> tuple:
    """Module-scoped fixtures `devenv`, `admin_database_url`, `kube_client` and `custom_api` on a
    world of the module's own (`own_world`), for modules the session's operator must not reach (it
    watches every namespace of the shared control plane). In the module:
    `devenv, admin_database_url, kube_client, custom_api = own_world_fixtures("selfheal-NAME-")`."""

    @pytest.fixture(scope="module", name="devenv")
    def devenv_fixture():
        with own_world(prefix) as env:
            yield env

    @pytest.fixture(scope="module", name="admin_database_url")
    def admin_database_url_fixture(devenv) -> str:
        return devenv.postgres.url("postgres")

    @pytest.fixture(scope="module", name="kube_client")
    def kube_client_fixture(devenv) -> kubernetes.client.ApiClient:
        return kubernetes.config.new_client_from_config(config_file=str(devenv.kubeconfig))

    @pytest.fixture(scope="module", name="custom_api")
    def custom_api_fixture(kube_client) -> kubernetes.client.CustomObjectsApi:
        return kubernetes.client.CustomObjectsApi(kube_client)

    return devenv_fixture, admin_database_url_fixture, kube_client_fixture, custom_api_fixture


class LocalHttpServer:
    """An HTTP server of a test's own on a free loopback port, served in a thread within `with`."""

    def _listen(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


class RegistryProxy(LocalHttpServer):
    """Forwards POSTs to the registry API at `upstream`; a test's subclass changes what `answer`
    returns for a path (blocks, replays, tampers) and forwards the rest."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("authorization", "content-type")}
                status, answer = proxy.answer(self.path.split("?")[0], lambda: proxy.forward(self.path, body, headers))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args) -> None:
                pass

        self._listen(Handler)

    def forward(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        request = urllib.request.Request(self.upstream + path, data=body, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def answer(self, path: str, forward: Callable[[], tuple[int, bytes]]) -> tuple[int, bytes]:
        return forward()
