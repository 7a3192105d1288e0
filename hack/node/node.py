#!/usr/bin/env python3
"""A real node for the local test world: containerd, kubelet, kube-proxy, scheduler and controller-manager.

    .venv/bin/python hack/node/node.py build
    .venv/bin/python hack/node/node.py up --state-dir DIR --apiserver-state DIR [--host-port 5432 ...]
    .venv/bin/python hack/node/node.py down --state-dir DIR

`build` builds kubelet, kube-scheduler, kube-controller-manager and kube-proxy from the control
plane's wrapper module (hack/controlplane/kubernetes, the version pinned there) into the same
cache as kube-apiserver (`$SELFHEAL_CACHE_DIR`, else ~/.cache/selfheal), and the pod sandbox
("pause") image with podman; both are skipped when already there. `up` joins a node to the API
server that `selfheal dev up` (or the tests' `devenv` fixture) started in `--apiserver-state`,
and waits until it is Ready; `down` stops everything `up` started, deletes what it created
(the bridge, iptables rules, mounts, the state) and fails if a process survived. Tests use
`running_node()`, a context manager doing both.

Debian packages it needs (it installs none): containerd, runc, containernetworking-plugins,
podman, iptables. Runs as root: it creates a network bridge and runs containers.

Networking: pods get addresses on the bridge `selfheal0` (POD_CIDR, host side GATEWAY). The
test world's API server and PostgreSQL listen on 127.0.0.1 only, so relay.py listens on
GATEWAY for them: the `kubernetes` Service's EndpointSlice points at its TLS relay (pods dial
the Service as in any cluster), and `--host-port` ports are relayed as plain TCP (PostgreSQL:
pods connect to GATEWAY:port). kube-proxy (iptables mode) serves ClusterIP Services, so the
API server reaches admission webhooks through their Service.

This machine is itself a sandbox: containers go through runc-wrapper (see there), the kubelet
runs without QoS cgroups and with eviction thresholds at zero (filesystem statistics are not
available here). None of that is needed on the clusters users run.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
KUBE_MODULE = ROOT / "hack" / "controlplane" / "kubernetes"
NODE_BINARIES = ("kubelet", "kube-scheduler", "kube-controller-manager", "kube-proxy")
# Go's version stamping for Kubernetes binaries, as the control plane's build does it.
KUBE_VERSION_PACKAGES = ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")

NODE_NAME = "selfheal-node"
BRIDGE = "selfheal0"
POD_CIDR = "10.244.0.0/24"
GATEWAY = "10.244.0.1"
API_RELAY_PORT = 6443
PAUSE_IMAGE = "localhost/selfheal-pause:1"
CONTAINERD_NAMESPACE = "k8s.io"  # the CRI plugin's
APT_PACKAGES = {  # command or file -> the Debian package that brings it
    "containerd": "containerd",
    "ctr": "containerd",
    "runc": "runc",
    "/usr/lib/cni/bridge": "containernetworking-plugins",
    "podman": "podman",
    "iptables": "iptables",
    "ip": "iproute2",
}


class NodeError(Exception):
    """Why the node cannot be built, started or stopped, said so the reader knows what to do."""


def log(message: str) -> None:
    print(f"node: {message}", file=sys.stderr, flush=True)


def cache_dir() -> Path:
    env = os.environ.get("SELFHEAL_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "selfheal"


def missing_packages() -> list[str]:
    missing = {
        package
        for tool, package in APT_PACKAGES.items()
        if not (Path(tool).exists() if tool.startswith("/") else shutil.which(tool))
    }
    return sorted(missing)


def check_packages() -> None:
    missing = missing_packages()
    if missing:
        raise NodeError(f"missing Debian packages: apt-get install -y {' '.join(missing)}")


# --- build ------------------------------------------------------------------------------------


def kube_version() -> str:
    match = re.search(r"^\s*k8s\.io/kubernetes\s+(v\S+)", (KUBE_MODULE / "go.mod").read_text(), re.M)
    if match is None:
        raise NodeError(f"{KUBE_MODULE}/go.mod does not require k8s.io/kubernetes")
    return match.group(1)


def binary_version(path: Path) -> str | None:
    if not path.is_file():
        return None
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
    except OSError:
        return None
    return out.stdout.strip() or None


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build() -> dict[str, Path]:
    """kubelet, kube-scheduler, kube-controller-manager and kube-proxy in the cache's bin/, at the
    version hack/controlplane/kubernetes pins (rebuilt when a binary says another), and the pause
    image in podman's store. Returns the binaries' paths."""
    check_packages()
    version = kube_version()
    bin_dir = cache_dir() / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    binaries = {name: bin_dir / name for name in NODE_BINARIES}
    # The control plane's lock: two Go builds of Kubernetes at once would take twice as long on 2 cores.
    with locked(cache_dir() / ".build.lock"):
        stale = [name for name, path in binaries.items() if binary_version(path) != f"Kubernetes {version}"]
        if stale:
            log(f"building {', '.join(stale)} {version} into {bin_dir} (minutes the first time)")
            major, minor = version.removeprefix("v").split(".")[:2]
            stamps = {"gitVersion": version, "gitMajor": major, "gitMinor": minor, "gitTreeState": "clean"}
            ldflags = " ".join(f"-X '{p}.{k}={v}'" for p in KUBE_VERSION_PACKAGES for k, v in stamps.items())
            go_build(KUBE_MODULE, [f"k8s.io/kubernetes/cmd/{name}" for name in stale], stale, ldflags, bin_dir)
    with locked(cache_dir() / "node" / ".build.lock"):
        build_pause_image()
    return binaries


def go_build(module: Path, packages: list[str], outputs: list[str], ldflags: str, bin_dir: Path) -> None:
    if shutil.which("go") is None:
        raise NodeError("the Go toolchain ('go') is not on PATH; it builds the node's binaries")
    started = time.monotonic()
    # Into a scratch directory, then renamed: an interrupted build never leaves a truncated binary.
    with tempfile.TemporaryDirectory(prefix=".build-", dir=bin_dir) as scratch:
        target = f"{scratch}/{outputs[0]}" if len(packages) == 1 else f"{scratch}/"
        argv = ["go", "build", "-mod=readonly", "-o", target, *packages]
        if ldflags:
            argv[2:2] = ["-ldflags", ldflags]
        result = subprocess.run(argv, cwd=module, capture_output=True, text=True)
        if result.returncode != 0:
            raise NodeError(f"go build failed in {module}:\n{result.stderr[-4000:]}")
        for name in outputs:
            os.replace(Path(scratch) / name, bin_dir / name)
    log(f"built {', '.join(outputs)} in {time.monotonic() - started:.0f}s")


def podman_env() -> dict[str, str]:
    """podman with a containers.conf of our own: RLIMITs cannot be raised here, and no systemd runs."""
    conf = cache_dir() / "node" / "containers.conf"
    text = '[containers]\ndefault_ulimits = []\n\n[engine]\ncgroup_manager = "cgroupfs"\n'
    if not conf.exists() or conf.read_text() != text:
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(text)
    return {**os.environ, "CONTAINERS_CONF": str(conf)}


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    # runc: crun refuses this machine's hybrid cgroup v1/v2 layout.
    result = subprocess.run(["podman", "--runtime", "runc", *args], env=podman_env(), capture_output=True, text=True)
    if check and result.returncode != 0:
        raise NodeError(f"podman {' '.join(args)} failed:\n{result.stderr.strip()[-2000:]}")
    return result


def build_pause_image() -> None:
    if podman("image", "exists", PAUSE_IMAGE, check=False).returncode == 0:
        return
    log(f"building {PAUSE_IMAGE}")
    with tempfile.TemporaryDirectory() as context:
        result = subprocess.run(
            ["go", "build", "-trimpath", "-ldflags", "-s -w", "-o", f"{context}/pause", "."],
            cwd=HERE / "pause",
            capture_output=True,
            text=True,
            env={**os.environ, "CGO_ENABLED": "0"},
        )
        if result.returncode != 0:
            raise NodeError(f"go build of the pause program failed:\n{result.stderr}")
        podman("build", "-t", PAUSE_IMAGE, "-f", str(HERE / "pause" / "Containerfile"), context)


# --- the running node -------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiServer:
    """What the node needs of the test world's API server (`selfheal dev up`'s state dir)."""

    kubeconfig: Path
    ca_cert: Path
    service_account_key: Path
    host: str
    port: int

    @classmethod
    def from_state_dir(cls, state_dir: Path) -> ApiServer:
        state = json.loads((state_dir / "state.json").read_text())["control_plane"]
        return cls(
            kubeconfig=Path(state["kubeconfig"]),
            ca_cert=Path(state["ca_cert"]),
            service_account_key=state_dir / "pki" / "service-account.key",
            host="127.0.0.1",
            port=int(state["apiserver_port"]),
        )


@dataclass(frozen=True)
class Node:
    state_dir: Path
    api: ApiServer
    kubectl: Path

    @property
    def containerd_socket(self) -> Path:
        return self.state_dir / "containerd" / "containerd.sock"

    def ctr(self, *args: str, check: bool = True, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        result = subprocess.run(
            ["ctr", "--address", str(self.containerd_socket), "-n", CONTAINERD_NAMESPACE, *args],
            capture_output=True,
            input=input,
            timeout=600,
        )
        if check and result.returncode != 0:
            raise NodeError(f"ctr {' '.join(args)} failed:\n{result.stderr.decode(errors='replace')}")
        return result

    def kube(self, *args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.kubectl), "--kubeconfig", str(self.api.kubeconfig), *args],
            capture_output=True,
            text=True,
            input=input,
            timeout=180,
        )
        if check and result.returncode != 0:
            raise NodeError(f"kubectl {' '.join(args)} failed:\n{result.stderr}")
        return result

    def load_image(self, image: str, *, also_as: str | None = None) -> None:
        """Copy `image` (a full name, as podman lists it) from podman's store into the node's
        containerd: there is no registry to pull from. `also_as` names it a second time, as pods
        ask for it (Kubernetes reads `selfheal:dev` as docker.io/library/selfheal:dev)."""
        with tempfile.TemporaryDirectory(dir=self.state_dir) as scratch:
            archive = f"{scratch}/image.tar"
            podman("save", "--format", "docker-archive", "-o", archive, image)
            self.ctr("images", "import", archive)
        if also_as:
            self.ctr("images", "rm", also_as, check=False)
            self.ctr("images", "tag", image, also_as)

    def pids(self) -> dict[str, int]:
        return {name: int(pid) for name, pid in read_state(self.state_dir).get("pids", {}).items()}


def read_state(state_dir: Path) -> dict[str, Any]:
    path = state_dir / "state.json"
    return json.loads(path.read_text()) if path.exists() else {}


def write_state(state_dir: Path, state: dict[str, Any]) -> None:
    (state_dir / "state.json").write_text(json.dumps(state, indent=2))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def spawn(argv: Sequence[str | Path], log_file: Path) -> int:
    """A daemon in its own session (so a Ctrl-C in the caller's terminal does not reach it)."""
    with open(log_file, "ab") as out:
        proc = subprocess.Popen(
            [str(a) for a in argv],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _children[proc.pid] = proc
    return proc.pid


_children: dict[int, subprocess.Popen[bytes]] = {}


def alive(pid: int) -> bool:
    child = _children.get(pid)
    if child is not None and child.poll() is not None:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def stop_pid(pid: int, name: str, *, marker: str, timeout: float = 20.0) -> None:
    """SIGTERM, then SIGKILL; only if the process's command line still names `marker` (our state
    dir or binary), so a recycled PID is never signalled."""
    if not alive(pid) or marker not in cmdline(pid):
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not alive(pid):
            return
        log(f"{name} (pid {pid}) still running after {sig.name}")
    raise NodeError(f"{name} (pid {pid}) survived SIGKILL")


def run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(argv), capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise NodeError(f"{' '.join(argv)} failed:\n{result.stderr}")
    return result


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def wait_until(what: str, check, *, timeout: float, logs: Sequence[Path] = (), interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            detail = "".join(f"\n--- last lines of {p.name} ---\n{tail(p)}" for p in logs)
            raise NodeError(f"{what}: not after {timeout:.0f}s{detail}")
        time.sleep(interval)


# --- configuration files ----------------------------------------------------------------------


def containerd_config(state_dir: Path) -> str:
    d = state_dir / "containerd"
    return f"""\
version = 2
root = "{d}/root"
state = "{d}/state"
# /opt/containerd is none of ours.
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
                    "io.containerd.snapshotter.v1.aufs"]

[grpc]
  address = "{d}/containerd.sock"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  # Pods' network namespaces under the state directory, not /var/run/netns.
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{state_dir}/cni"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        # This machine's sandbox refuses rlimits, oomScoreAdj and seccomp: see runc-wrapper.
        BinaryName = "{HERE / "runc-wrapper"}"
        Root = "{d}/runc"
        SystemdCgroup = false
"""


def cni_config(state_dir: Path) -> dict[str, Any]:
    return {
        "cniVersion": "1.0.0",
        "name": "selfheal-node",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "ipMasq": True,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_CIDR, "gateway": GATEWAY}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(state_dir / "cni-ipam"),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def kubelet_config(state_dir: Path, *, port: int, healthz_port: int) -> dict[str, Any]:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": GATEWAY,
        "port": port,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": healthz_port,
        # The node's own API is bound to the bridge address and open: a throw-away test node.
        "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False}},
        "authorization": {"mode": "AlwaysAllow"},
        "containerRuntimeEndpoint": f"unix://{state_dir / 'containerd' / 'containerd.sock'}",
        "podLogsDir": str(state_dir / "pod-logs"),
        # What this machine lacks: systemd, cgroup v2 alone, swap off, filesystem statistics.
        "cgroupDriver": "cgroupfs",
        "failCgroupV1": False,
        "failSwapOn": False,
        "cgroupsPerQOS": False,
        "enforceNodeAllocatable": [],
        "localStorageCapacityIsolation": False,
        "evictionHard": {
            "memory.available": "0%",
            "nodefs.available": "0%",
            "imagefs.available": "0%",
            "nodefs.inodesFree": "0%",
            "imagefs.inodesFree": "0%",
        },
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "serializeImagePulls": False,
        "registerNode": True,
        # No KUBE-FIREWALL or canary chains of the kubelet's own: kube-proxy makes what it needs and
        # removes it again (`kube-proxy --cleanup`); the kubelet's would outlive it on the machine.
        "makeIPTablesUtilChains": False,
        "syncFrequency": "10s",
        "fileCheckFrequency": "10s",
        "nodeStatusUpdateFrequency": "5s",
    }


def kube_proxy_config(state_dir: Path, api: ApiServer, *, healthz_port: int, metrics_port: int) -> dict[str, Any]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(api.kubeconfig)},
        "hostnameOverride": NODE_NAME,
        "mode": "iptables",
        "clusterCIDR": POD_CIDR,
        "bindAddress": GATEWAY,
        "healthzBindAddress": f"127.0.0.1:{healthz_port}",
        "metricsBindAddress": f"127.0.0.1:{metrics_port}",
        # Leave the machine's conntrack table size and timeouts and its route_localnet as they are.
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
        "iptables": {"localhostNodePorts": False},
        "nodePortAddresses": ["primary"],  # the bridge address only, not every address of the machine
    }


def relay_certificate(pki: Path, service_ip: str) -> Path:
    """A CA and a certificate for the addresses pods dial to reach the API server; returns the
    bundle pods trust (the API server's CA and ours), which kube-root-ca.crt publishes."""
    from selfheal.core import tls  # the project's own CA helper (cryptography)

    pki.mkdir(parents=True, exist_ok=True, mode=0o700)
    pems = tls.ca_and_serving_certificate(
        ca_name="selfheal-node-relay-ca",
        common_name="kubernetes",
        hosts=[
            service_ip,
            GATEWAY,
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ],
    )
    (pki / "relay.crt").write_bytes(pems.cert)
    (pki / "relay.key").write_bytes(pems.key)
    (pki / "relay.key").chmod(0o600)
    (pki / "relay-ca.crt").write_bytes(pems.ca_cert)
    return pki / "relay-ca.crt"


# --- up and down ------------------------------------------------------------------------------


def up(
    *, state_dir: Path, api: ApiServer, kubectl: Path, host_ports: Sequence[int] = (), timeout: float = 120.0
) -> Node:
    """Start the node and wait until it is Ready; stops what it started if anything fails.

    Idempotent: a node already running from `state_dir` is returned as it is; one that runs only in
    part (a daemon died) is stopped and started afresh."""
    check_packages()
    binaries = build()
    state_dir = state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    node = Node(state_dir=state_dir, api=api, kubectl=kubectl)
    recorded = read_state(state_dir)
    if recorded.get("pids"):
        if all(alive(pid) for pid in node.pids().values()) and node_ready(node):
            log(f"node {NODE_NAME} already up (state in {state_dir})")
            return node
        log("the node recorded there runs only in part; stopping it to start afresh")
        down(state_dir=state_dir, kubectl=kubectl)
    started = time.monotonic()
    state: dict[str, Any] = {"pids": {}, "api": {k: str(v) for k, v in api.__dict__.items()}}
    write_state(state_dir, state)
    logs = state_dir / "logs"
    logs.mkdir(exist_ok=True)

    def start(name: str, argv: Sequence[str | Path]) -> int:
        pid = spawn(argv, logs / f"{name}.log")
        state["pids"][name] = pid
        write_state(state_dir, state)
        return pid

    if run("ip", "link", "show", BRIDGE, check=False).returncode == 0:
        raise NodeError(
            f"the bridge {BRIDGE} exists: a node runs on this machine already (`node.py down`), "
            f"or one crashed (`ip link del {BRIDGE}`)"
        )
    try:
        run("ip", "link", "add", BRIDGE, "type", "bridge")
        state["bridge"] = BRIDGE
        write_state(state_dir, state)
        prefix = ipaddress.ip_network(POD_CIDR).prefixlen
        run("ip", "addr", "replace", f"{GATEWAY}/{prefix}", "dev", BRIDGE)
        run("ip", "link", "set", BRIDGE, "up")

        (state_dir / "containerd").mkdir(exist_ok=True)
        (state_dir / "containerd.toml").write_text(containerd_config(state_dir))
        (state_dir / "cni").mkdir(exist_ok=True)
        (state_dir / "cni" / "10-selfheal-node.conflist").write_text(json.dumps(cni_config(state_dir), indent=2))
        start("containerd", ["containerd", "--config", state_dir / "containerd.toml"])
        wait_until(
            "containerd answering",
            lambda: node.ctr("version", check=False).returncode == 0,
            timeout=30,
            logs=[logs / "containerd.log"],
        )
        node.load_image(PAUSE_IMAGE)

        service_ip = node.kube(
            "get", "service", "kubernetes", "-n", "default", "-o", "jsonpath={.spec.clusterIP}"
        ).stdout.strip()
        ca_bundle = state_dir / "pki" / "ca-bundle.crt"
        relay_ca = relay_certificate(state_dir / "pki", service_ip)
        ca_bundle.write_bytes(api.ca_cert.read_bytes() + relay_ca.read_bytes())
        relay = [
            sys.executable,
            HERE / "relay.py",
            "--tls",
            f"{GATEWAY}:{API_RELAY_PORT}={api.host}:{api.port}",
            "--cert",
            state_dir / "pki" / "relay.crt",
            "--key",
            state_dir / "pki" / "relay.key",
            "--upstream-ca",
            api.ca_cert,
        ]
        for port in host_ports:
            relay += ["--plain", f"{GATEWAY}:{port}=127.0.0.1:{port}"]
        start("relay", relay)
        wait_until(
            "relay listening",
            lambda: "relaying" in (logs / "relay.log").read_text(),
            timeout=15,
            logs=[logs / "relay.log"],
        )
        # The test world's API server runs without an endpoint reconciler: say where pods reach it.
        node.kube("apply", "-f", "-", input=json.dumps(kubernetes_endpoints()))

        kubelet_port, kubelet_healthz = free_port(), free_port()
        (state_dir / "kubelet.json").write_text(
            json.dumps(kubelet_config(state_dir, port=kubelet_port, healthz_port=kubelet_healthz), indent=2)
        )
        state["kubelet_port"] = kubelet_port
        start(
            "kubelet",
            [
                binaries["kubelet"],
                "--config",
                state_dir / "kubelet.json",
                "--kubeconfig",
                api.kubeconfig,
                "--hostname-override",
                NODE_NAME,
                "--node-ip",
                GATEWAY,
                "--root-dir",
                state_dir / "kubelet",
                "--cert-dir",
                state_dir / "kubelet" / "pki",
            ],
        )
        common = ["--kubeconfig", api.kubeconfig, "--leader-elect=false", "--secure-port=0"]
        start("kube-scheduler", [binaries["kube-scheduler"], *common])
        start(
            "kube-controller-manager",
            [
                binaries["kube-controller-manager"],
                *common,
                "--controllers=*,-nodeipam",  # the bridge's IPAM hands out pod addresses, not the node's podCIDR
                f"--service-account-private-key-file={api.service_account_key}",
                f"--root-ca-file={ca_bundle}",
                "--use-service-account-credentials=false",
            ],
        )
        proxy_ports = free_port(), free_port()
        (state_dir / "kube-proxy.json").write_text(
            json.dumps(
                kube_proxy_config(state_dir, api, healthz_port=proxy_ports[0], metrics_port=proxy_ports[1]), indent=2
            )
        )
        start("kube-proxy", [binaries["kube-proxy"], "--config", state_dir / "kube-proxy.json"])

        every_log = sorted(logs.glob("*.log"))
        wait_until(f"node {NODE_NAME} Ready", lambda: node_ready(node), timeout=timeout, logs=every_log)
        wait_until("kube-proxy synced", lambda: proxy_synced(proxy_ports[0]), timeout=timeout, logs=every_log)
        log(f"node {NODE_NAME} Ready in {time.monotonic() - started:.1f}s (state in {state_dir})")
        return node
    except BaseException:
        log("start failed; stopping what was started")
        with contextlib.suppress(NodeError):
            down(state_dir=state_dir, kubectl=kubectl)
        raise


def kubernetes_endpoints() -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "labels": {
                "kubernetes.io/service-name": "kubernetes",
                "endpointslice.kubernetes.io/managed-by": "selfheal-node",
            },
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": [GATEWAY], "conditions": {"ready": True}}],
        "ports": [{"name": "https", "port": API_RELAY_PORT, "protocol": "TCP"}],
    }


def node_ready(node: Node) -> bool:
    result = node.kube("get", "node", NODE_NAME, "-o", "json", check=False)
    if result.returncode != 0:
        return False
    conditions = json.loads(result.stdout).get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def proxy_synced(healthz_port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{healthz_port}/healthz", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def down(*, state_dir: Path, kubectl: Path | None = None, timeout: float = 90.0) -> None:
    """Stop everything `up` recorded in `state_dir`, remove what it created, check nothing survived.

    Pods go first while the kubelet still runs (it stops their containers, tears their network
    down through CNI and unmounts their volumes); then the daemons; then whatever a crash left.
    """
    state_dir = state_dir.resolve()
    state = read_state(state_dir)
    if not state:
        log(f"no node recorded in {state_dir}; nothing to stop")
        return
    pids = {name: int(pid) for name, pid in state.get("pids", {}).items()}
    errors: list[str] = []
    marker = str(state_dir)
    binaries = {name: str(cache_dir() / "bin" / name) for name in NODE_BINARIES}

    def stop(name: str) -> None:
        if name in pids:
            try:
                stop_pid(pids[name], name, marker=binaries.get(name, marker))
            except NodeError as err:
                errors.append(str(err))

    api = state.get("api")
    node = None
    if api and kubectl:
        node = Node(
            state_dir=state_dir,
            kubectl=kubectl,
            api=ApiServer(
                kubeconfig=Path(api["kubeconfig"]),
                ca_cert=Path(api["ca_cert"]),
                service_account_key=Path(api["service_account_key"]),
                host=api["host"],
                port=int(api["port"]),
            ),
        )
    for name in ("kube-controller-manager", "kube-scheduler"):  # nothing recreates pods from here on
        stop(name)
    if node is not None and "kubelet" in pids and alive(pids["kubelet"]):
        drain(node, timeout=timeout)
    for name in ("kubelet", "kube-proxy", "relay"):
        stop(name)
    if "kube-proxy" in pids:
        cleanup = run(binaries["kube-proxy"], "--cleanup", check=False)
        if cleanup.returncode != 0:
            errors.append(f"kube-proxy --cleanup: {cleanup.stderr[-500:]}")
        remove_firewall_chain()
    if "containerd" in pids and alive(pids["containerd"]) and node is not None:
        kill_tasks(node)
    stop("containerd")
    kill_shims(state_dir)
    with contextlib.suppress(OSError):  # the shims' socket directory, when they left it empty
        Path("/run/containerd/s").rmdir()
        Path("/run/containerd").rmdir()
    unmount_under(state_dir)
    if state.get("bridge"):
        run("ip", "link", "del", state["bridge"], check=False)
    if node is not None:
        node.kube("delete", "node", NODE_NAME, "--ignore-not-found", "--wait=false", check=False)
        node.kube("delete", "endpointslice", "kubernetes", "-n", "default", "--ignore-not-found", check=False)
    survivors = {name: pid for name, pid in pids.items() if alive(pid) and binaries.get(name, marker) in cmdline(pid)}
    if survivors:
        errors.append(f"still running: {survivors}")
    if errors:
        raise NodeError("node down incomplete:\n" + "\n".join(errors))
    for name in ("containerd", "kubelet", "cni-ipam", "pki"):
        shutil.rmtree(state_dir / name, ignore_errors=True)
    (state_dir / "state.json").unlink(missing_ok=True)
    log("node down: every process stopped, bridge and iptables rules removed")


def remove_firewall_chain() -> None:
    """kube-proxy's copy of the kubelet's KUBE-FIREWALL chain (martian packets to 127.0.0.0/8),
    which `kube-proxy --cleanup` leaves on purpose for the kubelet: this node's kubelet is gone too."""
    for tool in ("iptables", "ip6tables"):
        if shutil.which(tool) is None:
            continue
        for parent in ("INPUT", "OUTPUT"):
            while run(tool, "-w", "-D", parent, "-j", "KUBE-FIREWALL", check=False).returncode == 0:
                pass
        run(tool, "-w", "-F", "KUBE-FIREWALL", check=False)
        run(tool, "-w", "-X", "KUBE-FIREWALL", check=False)


def drain(node: Node, *, timeout: float) -> None:
    """Delete every pod bound to the node and wait until the kubelet has stopped them all."""
    node.kube(
        "delete",
        "pods",
        "--all-namespaces",
        "--field-selector",
        f"spec.nodeName={NODE_NAME}",
        "--grace-period=5",
        "--wait=false",
        check=False,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = node.kube(
            "get",
            "pods",
            "--all-namespaces",
            "--field-selector",
            f"spec.nodeName={NODE_NAME}",
            "-o",
            "name",
            check=False,
        )
        tasks = node.ctr("tasks", "ls", "-q", check=False).stdout.split()
        if left.returncode == 0 and not left.stdout.strip() and not tasks:
            return
        time.sleep(0.5)
    log(f"pods or containers still there {timeout:.0f}s after deleting the node's pods")


def kill_tasks(node: Node) -> None:
    """Pods the kubelet did not stop (it crashed): their network torn down through the CNI plugins
    (containerd would have), then their containers killed and deleted through containerd."""
    for container in node.ctr("containers", "ls", "-q", check=False).stdout.decode().split():
        info = json.loads(node.ctr("containers", "info", container, check=False).stdout or b"{}")
        if (info.get("Labels") or {}).get("io.cri-containerd.kind") == "sandbox":
            namespaces = info.get("Spec", {}).get("linux", {}).get("namespaces", [])
            netns = next((n.get("path", "") for n in namespaces if n["type"] == "network"), "")
            cni_delete(node.state_dir, container=container, netns=netns)
    for task in node.ctr("tasks", "ls", "-q", check=False).stdout.decode().split():
        node.ctr("tasks", "kill", "-s", "SIGKILL", task, check=False)
        for _ in range(50):
            if node.ctr("tasks", "delete", task, check=False).returncode == 0:
                break
            time.sleep(0.1)


def cni_delete(state_dir: Path, *, container: str, netns: str) -> None:
    """CNI DEL for one pod sandbox, each plugin of the list in reverse order (as libcni does): the
    bridge plugin removes the pod's veth, its address lease and its masquerading rules."""
    network = cni_config(state_dir)
    for plugin in reversed(network["plugins"]):
        config = {"cniVersion": network["cniVersion"], "name": network["name"], **plugin}
        env = {
            **os.environ,
            "CNI_COMMAND": "DEL",
            "CNI_CONTAINERID": container,
            "CNI_NETNS": netns,
            "CNI_IFNAME": "eth0",
            "CNI_PATH": "/usr/lib/cni",
        }
        subprocess.run(
            [f"/usr/lib/cni/{plugin['type']}"],
            input=json.dumps(config),
            env=env,
            text=True,
            capture_output=True,
            timeout=30,
        )


def kill_shims(state_dir: Path) -> None:
    """containerd's shims outlive containerd: stop each one this node's containerd started (their
    PIDs are in its state directory)."""
    for pid_file in (state_dir / "containerd" / "state").glob("io.containerd.runtime.v2.task/*/*/shim.pid"):
        with contextlib.suppress(ValueError, OSError):
            pid = int(pid_file.read_text().strip())
            if "containerd-shim" in cmdline(pid):
                os.kill(pid, signal.SIGKILL)


def unmount_under(state_dir: Path) -> None:
    """Volumes (secrets, tokens, emptyDirs) and network namespaces a crash left mounted."""
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    for point in sorted((m for m in mounts if m.startswith(str(state_dir) + "/")), key=len, reverse=True):
        run("umount", "-l", point, check=False)


# --- for tests --------------------------------------------------------------------------------


@contextlib.contextmanager
def running_node(*, state_dir: Path, api: ApiServer, kubectl: Path, host_ports: Sequence[int] = ()) -> Iterator[Node]:
    node = up(state_dir=state_dir, api=api, kubectl=kubectl, host_ports=host_ports)
    try:
        yield node
    finally:
        down(state_dir=state_dir, kubectl=kubectl)


def kubelet_get(node: Node, path: str) -> str:
    """GET from the kubelet's own API (metrics, probes): anonymous, on the bridge address, with the
    kubelet's self-signed serving certificate."""
    context = ssl.create_default_context(cafile=str(node.state_dir / "kubelet" / "pki" / "kubelet.crt"))
    context.check_hostname = False  # its certificate names the host name, not the bridge address
    port = read_state(node.state_dir)["kubelet_port"]
    with urllib.request.urlopen(f"https://{GATEWAY}:{port}{path}", context=context, timeout=10) as response:
        return response.read().decode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("build", help="build the node's binaries and the pause image (cached)")
    start = commands.add_parser("up", help="join a node to a running `selfheal dev up` world")
    start.add_argument("--state-dir", type=Path, required=True)
    start.add_argument(
        "--apiserver-state", type=Path, required=True, help="the state dir of `selfheal dev up` (SELFHEAL_STATE_DIR)"
    )
    start.add_argument(
        "--host-port",
        type=int,
        action="append",
        default=[],
        help="a 127.0.0.1 port pods reach at the bridge address (PostgreSQL's)",
    )
    stop = commands.add_parser("down", help="stop the node and remove what it created")
    stop.add_argument("--state-dir", type=Path, required=True)
    args = parser.parse_args()
    try:
        if args.command == "build":
            for name, path in build().items():
                print(f"{name}: {path}")
        elif args.command == "up":
            api = ApiServer.from_state_dir(args.apiserver_state.resolve())
            kubectl = Path(json.loads((args.apiserver_state / "state.json").read_text())["bin_dir"]) / "kubectl"
            up(state_dir=args.state_dir, api=api, kubectl=kubectl, host_ports=args.host_port)
        else:
            api_state = read_state(args.state_dir.resolve()).get("api")
            kubectl = cache_dir() / "bin" / "kubectl" if api_state else None
            down(state_dir=args.state_dir, kubectl=kubectl)
    except NodeError as err:
        sys.exit(f"node: {err}")


if __name__ == "__main__":
    main()
