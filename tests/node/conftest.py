"""A real node joined to the session's API server: pods run, probes are probed, Services route.

The node (hack/node/node.py: containerd, kubelet, kube-proxy, kube-scheduler,
kube-controller-manager) is started for this folder's tests and stopped after them, leaving no
process, bridge, mount or iptables rule behind. It needs root and the Debian packages
containerd, runc, containernetworking-plugins, podman and iptables: when one is missing the tests
fail, saying which (CI installs them in .ci/run).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from hack.node import node as node_tool

ROOT = Path(__file__).resolve().parents[2]
# The image as hack/image/build.py builds it, and the name the `local` overlay gives it.
IMAGE = "localhost/selfheal:node"
OVERLAY_IMAGE = "docker.io/library/selfheal:dev"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "node: runs pods on a real local node (hack/node); needs root, never skipped")


@pytest.fixture(scope="module")
def node(devenv):
    state_dir = Path(tempfile.mkdtemp(prefix="selfheal-node-"))
    api = node_tool.ApiServer(
        kubeconfig=devenv.kubeconfig,
        ca_cert=devenv.control_plane.ca_cert,
        service_account_key=devenv.state_dir / "pki" / "service-account.key",
        host="127.0.0.1",
        port=devenv.control_plane.apiserver_port,
    )
    # PostgreSQL listens on 127.0.0.1: the node relays its port on the bridge's gateway address.
    try:
        with node_tool.running_node(
            state_dir=state_dir, api=api, kubectl=devenv.kubectl, host_ports=[devenv.postgres.port]
        ) as running:
            yield running
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def selfheal_image(node) -> str:
    """The selfheal image built as a developer builds it (seconds when podman's cache has it), then
    imported into the node's containerd under the name the overlay uses."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "hack/image/build.py"), "--tag", IMAGE],
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert result.returncode == 0, f"hack/image/build.py failed:\n{result.stderr[-6000:]}"
    node.load_image(IMAGE, also_as=OVERLAY_IMAGE)
    return OVERLAY_IMAGE
