"""The image's tests: built through hack/image/build.py, run with the Deployments' security context.

The loop runs in a test world of its own, started as tests/conftest.py starts the shared one (a
kube-apiserver, etcd and PostgreSQL on free ports): the session's operator (tests/conftest.py)
watches every namespace of the shared world, and a second operator on the same cluster would
fight it over the same patches' status. The fixtures keep the names tests/conftest.py and
tests/e2e/conftest.py give them, so the loop's own tests (tests/e2e/test_self_healing_loop.py)
run here unchanged, through the containers.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import kubernetes
import pytest

from tests.conftest import _new_database
from tests.e2e.conftest import loop_namespace, patches_in  # noqa: F401 (fixtures, here on this world)
from tests.image.containers import OperatorContainer, start_api_container
from tests.support import own_world

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "localhost/selfheal:test"


@pytest.fixture(scope="session")
def image() -> str:
    """The image, built as a developer builds it; seconds when podman's cache has it."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "hack/image/build.py"), "--tag", IMAGE],
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert result.returncode == 0, f"hack/image/build.py failed:\n{result.stderr[-6000:]}"
    assert result.stdout.strip() == IMAGE
    return IMAGE


@pytest.fixture(scope="session")
def devenv():
    # A world of its own: the session's operator watches every namespace of the other one.
    with own_world("selfheal-image-devenv-") as env:
        yield env


@pytest.fixture(scope="session")
def admin_database_url(devenv) -> str:
    return devenv.postgres.url("postgres")


@pytest.fixture(scope="session")
def operator_database_url(admin_database_url, devenv) -> str:
    return _new_database(admin_database_url, devenv, "image")


@pytest.fixture(scope="session")
def kube_client(devenv) -> kubernetes.client.ApiClient:
    return kubernetes.config.new_client_from_config(config_file=str(devenv.kubeconfig))


@pytest.fixture(scope="session")
def custom_api(kube_client) -> kubernetes.client.CustomObjectsApi:
    return kubernetes.client.CustomObjectsApi(kube_client)


@pytest.fixture(scope="session")
def operator(image, devenv, operator_database_url, tmp_path_factory):
    container = OperatorContainer(
        image=image,
        kubeconfig=devenv.kubeconfig,
        database_url=operator_database_url,
        log_file=tmp_path_factory.mktemp("image-operator") / "operator.log",
    )
    container.start()
    try:
        yield container
    finally:
        container.stop()


@pytest.fixture(scope="module")
def registry_api(image, operator, operator_database_url, devenv, loop_namespace, tmp_path_factory):  # noqa: F811
    server = start_api_container(
        image=image,
        database_url=operator_database_url,
        kubeconfig=devenv.kubeconfig,
        patch_namespace=loop_namespace,
        directory=tmp_path_factory.mktemp("image-api"),
        rate=1000,  # the loop's SDK must not meet the rate limit
    )
    yield server
    server.stop()
