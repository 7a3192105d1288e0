"""Start and stop a real etcd + kube-apiserver on loopback, the way envtest does.

No controller-manager or scheduler runs: objects are stored and served, nothing
reconciles them (no pods are scheduled, namespace deletion never finishes, so
tests should use fresh namespace names instead of deleting and re-creating).
"""

from __future__ import annotations

import base64
import json
import shutil
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from . import pki
from ._process import (
    BIND_ATTEMPTS,
    LOOPBACK,
    Log,
    fail_with_log,
    free_ports,
    pid_runs,
    port_taken,
    spawn,
    stop,
    wait_ports_closed,
)
from .build import Binaries
from .errors import DevEnvError

# Without a controller-manager nothing allocates service IPs; the range only has
# to be valid and must not overlap loopback.
_SERVICE_CIDR = "10.0.0.0/24"
_CONTEXT = "selfheal-dev"


@dataclass(frozen=True)
class ControlPlane:
    """A running etcd + kube-apiserver pair (serialisable into the state file)."""

    etcd: Path
    kube_apiserver: Path
    etcd_pid: int
    etcd_client_port: int
    etcd_peer_port: int
    apiserver_pid: int
    apiserver_port: int
    kubeconfig: Path
    ca_cert: Path
    admin_token: str
    state_dir: Path

    @property
    def server(self) -> str:
        return f"https://{LOOPBACK}:{self.apiserver_port}"

    @property
    def ports(self) -> dict[str, int]:
        return {
            "etcd-client": self.etcd_client_port,
            "etcd-peer": self.etcd_peer_port,
            "kube-apiserver": self.apiserver_port,
        }

    def to_state(self) -> dict[str, Any]:
        return {k: str(v) if isinstance(v, Path) else v for k, v in self.__dict__.items()}

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> ControlPlane:
        return cls(
            etcd=Path(data["etcd"]),
            kube_apiserver=Path(data["kube_apiserver"]),
            etcd_pid=int(data["etcd_pid"]),
            etcd_client_port=int(data["etcd_client_port"]),
            etcd_peer_port=int(data["etcd_peer_port"]),
            apiserver_pid=int(data["apiserver_pid"]),
            apiserver_port=int(data["apiserver_port"]),
            kubeconfig=Path(data["kubeconfig"]),
            ca_cert=Path(data["ca_cert"]),
            admin_token=str(data["admin_token"]),
            state_dir=Path(data["state_dir"]),
        )


def start_control_plane(*, binaries: Binaries, state_dir: Path, log: Log, timeout: float = 60.0) -> ControlPlane:
    """Start etcd and kube-apiserver as detached daemons and wait until the API serves.

    Data, credentials, logs (etcd.log, kube-apiserver.log) and the kubeconfig go
    into `state_dir`. The processes survive this interpreter; stop them with
    `stop_control_plane`. On any failure both are stopped before raising
    DevEnvError (with the tail of the failing component's log). When one failed
    because a port picked free was taken in between, both start again on fresh ports.
    """
    for attempt in range(1, BIND_ATTEMPTS + 1):
        try:
            return _start_control_plane(binaries=binaries, state_dir=state_dir, log=log, timeout=timeout)
        except DevEnvError as error:  # its message ends with the failing component's log, new each start
            if attempt == BIND_ATTEMPTS or not port_taken(str(error)):
                raise
            log("a port was taken between picking and binding it; starting again on other ports")
    raise AssertionError("unreachable")


def _start_control_plane(*, binaries: Binaries, state_dir: Path, log: Log, timeout: float) -> ControlPlane:
    state_dir.mkdir(parents=True, exist_ok=True)
    etcd_client, etcd_peer, api_port = free_ports(3)
    etcd_log = state_dir / "etcd.log"
    api_log = state_dir / "kube-apiserver.log"
    for log_file in (etcd_log, api_log):
        log_file.unlink(missing_ok=True)

    etcd_data = state_dir / "etcd"
    shutil.rmtree(etcd_data, ignore_errors=True)  # a fresh cluster every start
    log(f"starting etcd on {LOOPBACK}:{etcd_client}")
    etcd_url, peer_url = f"http://{LOOPBACK}:{etcd_client}", f"http://{LOOPBACK}:{etcd_peer}"
    etcd_pid = spawn(
        [
            binaries.etcd,
            "--name=selfheal-dev",
            f"--data-dir={etcd_data}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=selfheal-dev={peer_url}",
            # throw-away dev data: skipping fsync makes API writes much faster (envtest does the same)
            "--unsafe-no-fsync=true",
            "--log-level=warn",
        ],
        log_file=etcd_log,
    )
    apiserver_pid = None
    try:
        _wait_etcd(etcd_url, pid=etcd_pid, binary=binaries.etcd, log_file=etcd_log, timeout=timeout)

        creds = pki.generate(state_dir / "pki")
        log(f"starting kube-apiserver on {LOOPBACK}:{api_port}")
        apiserver_pid = spawn(
            [
                binaries.kube_apiserver,
                f"--etcd-servers={etcd_url}",
                f"--bind-address={LOOPBACK}",
                f"--advertise-address={LOOPBACK}",
                f"--secure-port={api_port}",
                # where it would write self-signed certs if ours were missing; keep it out of cwd
                f"--cert-dir={state_dir / 'pki'}",
                f"--tls-cert-file={creds.serving_cert}",
                f"--tls-private-key-file={creds.serving_key}",
                f"--token-auth-file={creds.token_file}",
                "--authorization-mode=RBAC",
                f"--service-account-issuer=https://{LOOPBACK}:{api_port}",
                f"--service-account-key-file={creds.service_account_key}",
                f"--service-account-signing-key-file={creds.service_account_key}",
                f"--service-cluster-ip-range={_SERVICE_CIDR}",
                "--allow-privileged=true",
                # the "kubernetes" Service cannot point at a loopback address (the
                # reconciler would log an error every 10s) and nothing in-cluster needs it
                "--endpoint-reconciler-type=none",
                # a dev server has no load balancer to drain; stop immediately on SIGTERM
                "--shutdown-delay-duration=0s",
            ],
            log_file=api_log,
        )
        kubeconfig = state_dir / "kubeconfig"
        _write_kubeconfig(kubeconfig, server=f"https://{LOOPBACK}:{api_port}", creds=creds)
        plane = ControlPlane(
            etcd=binaries.etcd,
            kube_apiserver=binaries.kube_apiserver,
            etcd_pid=etcd_pid,
            etcd_client_port=etcd_client,
            etcd_peer_port=etcd_peer,
            apiserver_pid=apiserver_pid,
            apiserver_port=api_port,
            kubeconfig=kubeconfig,
            ca_cert=creds.ca_cert,
            admin_token=creds.admin_token,
            state_dir=state_dir,
        )
        _wait_serving(plane, log_file=api_log, timeout=timeout)
        return plane
    except BaseException:
        # includes KeyboardInterrupt: never leave half a control plane running
        if apiserver_pid is not None:
            stop(apiserver_pid, executable=binaries.kube_apiserver, name="kube-apiserver", log=log)
        stop(etcd_pid, executable=binaries.etcd, name="etcd", log=log)
        raise


def stop_control_plane(plane: ControlPlane, *, log: Log, timeout: float = 15.0) -> None:
    """Stop the API server first (it must not see etcd vanish), then etcd; verify ports are free.

    Safe to call when either process already exited.
    """
    stop(plane.apiserver_pid, executable=plane.kube_apiserver, name="kube-apiserver", log=log, timeout=timeout)
    stop(plane.etcd_pid, executable=plane.etcd, name="etcd", log=log, timeout=timeout)
    wait_ports_closed(plane.ports)


def is_running(plane: ControlPlane) -> bool:
    """True if both processes are alive and the API server reports ready."""
    if not (pid_runs(plane.etcd_pid, plane.etcd) and pid_runs(plane.apiserver_pid, plane.kube_apiserver)):
        return False
    status, _ = api_get(plane, "/readyz")
    return status == 200


def api_get(plane: ControlPlane, path: str, *, timeout: float = 5.0) -> tuple[int, Any]:
    """GET `path` as the admin user; returns (HTTP status, parsed JSON or text).

    Status 0 means the server could not be reached at all.
    """
    context = ssl.create_default_context(cafile=str(plane.ca_cert))
    request = urllib.request.Request(plane.server + path, headers={"Authorization": f"Bearer {plane.admin_token}"})
    try:
        with urllib.request.urlopen(request, context=context, timeout=timeout) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as err:
        status, body = err.code, err.read()
    except (urllib.error.URLError, OSError):
        return 0, None
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body.decode(errors="replace")


def _wait_etcd(url: str, *, pid: int, binary: Path, log_file: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if not pid_runs(pid, binary):
            raise fail_with_log("etcd exited during start-up", log_file=log_file)
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if json.loads(response.read()).get("health") == "true":
                    return
        except (urllib.error.URLError, OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            raise fail_with_log(f"etcd not healthy after {timeout:.0f}s", log_file=log_file)
        time.sleep(0.1)


def _wait_serving(plane: ControlPlane, *, log_file: Path, timeout: float) -> None:
    """Wait for /readyz, then until namespaces really list and "default" exists.

    /readyz can turn green a moment before the bootstrap controller has created
    the system namespaces, and clients (kubectl, kopf) assume "default" exists.
    """
    deadline = time.monotonic() + timeout
    stage, last = "/readyz", ""
    while True:
        if not pid_runs(plane.apiserver_pid, plane.kube_apiserver):
            raise fail_with_log("kube-apiserver exited during start-up", log_file=log_file)
        if stage == "/readyz":
            status, body = api_get(plane, "/readyz")
            last = f"/readyz -> {status} {str(body)[:300]}"
            if status == 200:
                stage = "namespaces"
        if stage == "namespaces":
            status, body = api_get(plane, "/api/v1/namespaces")
            last = f"GET namespaces -> {status}"
            if status == 200:
                names = {item["metadata"]["name"] for item in body.get("items", [])}
                if "default" in names:
                    return
                last += f" (no 'default' yet: {sorted(names)})"
        if time.monotonic() > deadline:
            raise fail_with_log(
                f"kube-apiserver not serving after {timeout:.0f}s; last check: {last}",
                log_file=log_file,
            )
        time.sleep(0.2)


def _write_kubeconfig(path: Path, *, server: str, creds: pki.ApiServerCredentials) -> None:
    # CA data is embedded so the kubeconfig stays valid when copied elsewhere.
    ca_data = base64.b64encode(creds.ca_cert.read_bytes()).decode()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": _CONTEXT, "cluster": {"server": server, "certificate-authority-data": ca_data}}],
        "users": [{"name": pki.ADMIN_USER, "user": {"token": creds.admin_token}}],
        "contexts": [
            {
                "name": _CONTEXT,
                "context": {"cluster": _CONTEXT, "user": pki.ADMIN_USER, "namespace": "default"},
            }
        ],
        "current-context": _CONTEXT,
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
