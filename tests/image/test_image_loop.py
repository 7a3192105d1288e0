"""The end-to-end loop through the image: `selfheal operator` and `selfheal api` run as containers
with the Deployments' security context (tests/image/containers.py), against a real kube-apiserver
and PostgreSQL; kubectl applies the patch, the Python SDK heals a call against the containerised
API, and its bad reports make the containerised operator switch the patch off."""

from __future__ import annotations

import signal
import subprocess

import pytest

from tests.conftest import _new_database
from tests.e2e.test_self_healing_loop import (  # noqa: F401 (collected here, on this module's fixtures)
    test_patch_applied_with_kubectl_heals_a_failing_call,
    test_reported_failures_switch_a_bad_patch_off_and_the_sdk_stops_receiving_it,
    test_tampered_envelope_is_refused,
)
from tests.image.containers import USER, OperatorContainer, podman, start_api_container
from tests.support import new_namespace

# The first test to need the image builds it: a minute or two on a machine without podman's cache.
pytestmark = pytest.mark.timeout(900)


def process_status(container: str) -> dict[str, str]:
    """/proc/1/status of the container's first process (selfheal itself): what the kernel enforces."""
    result = podman("exec", container, "cat", "/proc/1/status")
    assert result.returncode == 0, result.stderr
    return dict(line.split(":\t", 1) for line in result.stdout.splitlines() if ":\t" in line)


def test_operator_and_api_run_with_the_deployments_security_context(operator, registry_api):
    uid, gid = USER.split(":")
    for container in (operator.name, registry_api.name):
        status = process_status(container)
        assert status["Uid"].split()[:2] == [uid, uid] and status["Gid"].split()[:2] == [gid, gid], status
        assert int(status["CapEff"], 16) == 0 and int(status["CapBnd"], 16) == 0, status  # every capability dropped
        assert status["NoNewPrivs"].strip() == "1", status  # allowPrivilegeEscalation: false
        writes = podman(
            "exec",
            container,
            "python3",
            "-c",
            "import os, pathlib\n"
            "pathlib.Path('/tmp/scratch').write_text('ok')\n"  # the pods' emptyDir
            "for path in (os.environ['HOME'], '/opt/selfheal'):\n"
            "    try:\n"
            "        pathlib.Path(path, 'probe').write_text('x')\n"
            "    except OSError as error:\n"
            "        print(path, error.errno)\n",
        )
        assert writes.returncode == 0, writes.stderr
        home, home_errno, root, root_errno = writes.stdout.split()
        # No writable HOME (the image's user has /nonexistent, on a read-only root) and a read-only root.
        assert (home, root, root_errno) == ("/nonexistent", "/opt/selfheal", "30")
        assert home_errno in ("2", "30")  # ENOENT or EROFS: nothing can be written there


@pytest.mark.parametrize("component", ["operator", "api"])
def test_a_container_stops_at_once_on_sigterm(component, image, devenv, admin_database_url, kube_client, tmp_path):
    """The kubelet stops a pod with SIGTERM to PID 1, where Python ignores the signals it has no handler for."""
    database_url = _new_database(admin_database_url, devenv, "sigterm")
    namespace = new_namespace(kube_client, "sigterm")
    if component == "operator":  # watching an empty namespace of its own: nothing to fight over
        started = OperatorContainer(
            image=image,
            kubeconfig=devenv.kubeconfig,
            database_url=database_url,
            log_file=tmp_path / "operator.log",
            extra_args=("--namespace", namespace),
        )
        started.start()
        process, name, log = started.process, started.name, started.log_file
    else:
        started = start_api_container(
            image=image,
            database_url=database_url,
            kubeconfig=devenv.kubeconfig,
            patch_namespace=namespace,
            directory=tmp_path,
        )
        process, name, log = started.process, started.name, started.log_file
    try:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{component} still running 15 s after SIGTERM:\n{log.read_text(errors='replace')[-3000:]}")
        assert code == 0, log.read_text(errors="replace")[-3000:]
    finally:
        started.stop()
    assert podman("container", "exists", name).returncode == 1  # --rm: nothing left behind
