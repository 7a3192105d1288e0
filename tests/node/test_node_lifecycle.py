"""hack/node/node.py's `down` leaves the machine as it found it: no process, network bridge,
iptables rule, mount or network namespace of the node survives, even with a pod still running,
and even when the kubelet died first (nothing then stops the pod's containers or network)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

from hack.node import node as node_tool
from tests.support import wait_until

pytestmark = [pytest.mark.node, pytest.mark.timeout(900)]


def iptables_chains() -> set[str]:
    """Every chain of the node's kinds (kube-proxy's KUBE-*, the CNI plugins' CNI-*), IPv4 and IPv6."""
    chains = set()
    for tool in ("iptables-save", "ip6tables-save"):
        for line in subprocess.run([tool], capture_output=True, text=True, check=True).stdout.splitlines():
            if line.startswith(":") and line[1:].startswith(("KUBE-", "CNI-")):
                chains.add(f"{tool}:{line[1:].split()[0]}")
    return chains


@pytest.mark.parametrize("kubelet", ["running", "killed"])
def test_down_leaves_nothing_behind(devenv, kubelet):
    chains_before = iptables_chains()
    state_dir = Path(tempfile.mkdtemp(prefix="selfheal-node-"))
    try:
        api = node_tool.ApiServer(
            kubeconfig=devenv.kubeconfig,
            ca_cert=devenv.control_plane.ca_cert,
            service_account_key=devenv.state_dir / "pki" / "service-account.key",
            host="127.0.0.1",
            port=devenv.control_plane.apiserver_port,
        )
        node = node_tool.up(state_dir=state_dir, api=api, kubectl=devenv.kubectl)
        pids = node.pids()
        assert node_tool.up(state_dir=state_dir, api=api, kubectl=devenv.kubectl).pids() == pids  # found, not restarted
        assert set(pids) == {
            "containerd",
            "relay",
            "kubelet",
            "kube-scheduler",
            "kube-controller-manager",
            "kube-proxy",
        }
        # A pod left running at `down`: its container, network namespace and volumes must go too.
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "left-running", "namespace": "default"},
            "spec": {"containers": [{"name": "pause", "image": node_tool.PAUSE_IMAGE, "imagePullPolicy": "Never"}]},
        }
        node.kube("apply", "-f", "-", input=json.dumps(pod))
        wait_until(
            lambda: node.kube("get", "pod", "left-running", "-o", "jsonpath={.status.phase}").stdout == "Running",
            timeout=60,
            what="the pod running",
        )
        # `ctr tasks ls`: TASK PID STATUS, after a header line
        containers = [int(line.split()[1]) for line in node.ctr("tasks", "ls").stdout.decode().splitlines()[1:]]
        assert containers, "no container runs"
        assert chains_before < iptables_chains(), "kube-proxy made no rule"
        if kubelet == "killed":
            os.kill(pids["kubelet"], signal.SIGKILL)
            wait_until(lambda: not node_tool.alive(pids["kubelet"]), what="the kubelet gone")

        node_tool.down(state_dir=state_dir, kubectl=devenv.kubectl)

        assert not [name for name, pid in pids.items() if node_tool.alive(pid)]
        assert not [pid for pid in containers if node_tool.alive(pid)]
        assert not mentioning(state_dir), "a process (a containerd shim?) outlived the node"
        assert subprocess.run(["ip", "link", "show", node_tool.BRIDGE], capture_output=True).returncode != 0
        assert iptables_chains() == chains_before
        assert str(state_dir) not in Path("/proc/self/mountinfo").read_text()
        gone = node.kube("get", "node", node_tool.NODE_NAME, "--ignore-not-found", "-o", "name").stdout
        assert not gone.strip()
        node_tool.down(state_dir=state_dir, kubectl=devenv.kubectl)  # a second `down` finds nothing to do
    finally:
        node_tool.down(state_dir=state_dir, kubectl=devenv.kubectl)
        shutil.rmtree(state_dir, ignore_errors=True)


def mentioning(state_dir: Path) -> list[int]:
    """PIDs whose command line names the node's state directory (containerd, its shims, the kubelet...)."""
    return [
        int(path.parent.name)
        for path in Path("/proc").glob("[0-9]*/cmdline")
        if str(state_dir) in node_tool.cmdline(int(path.parent.name))
    ]
