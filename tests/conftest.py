"""The test world: one real kube-apiserver + etcd and one real PostgreSQL per test run.

Nothing here is faked. If a component does not start, the session fails: no test is
skipped because its world is missing.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import kubernetes
import psycopg
import pytest

from selfheal.registry.migrate import migrate
from tests.support import OperatorProcess, Patches, Registry, new_namespace, own_world

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def devenv():
    with own_world("selfheal-devenv-") as env:
        yield env


@pytest.fixture(scope="session")
def admin_database_url(devenv) -> str:
    return devenv.postgres.url("postgres")


def _new_database(admin_url: str, devenv, prefix: str) -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return devenv.postgres.url(name)


@pytest.fixture(scope="module")
def fresh_database(admin_database_url, devenv) -> str:
    """A migrated database of its own for a test module."""
    url = _new_database(admin_database_url, devenv, "t")
    migrate(url)
    return url


@pytest.fixture()
def own_database(admin_database_url, devenv) -> str:
    """A migrated database for one test alone: for tests whose code under test reads every row of
    the registry (the guard's cycle), so that no other test's patches or clock can reach them."""
    url = _new_database(admin_database_url, devenv, "own")
    migrate(url)
    return url


@pytest.fixture(scope="session")
def kube_client(devenv) -> kubernetes.client.ApiClient:
    return kubernetes.config.new_client_from_config(config_file=str(devenv.kubeconfig))


@pytest.fixture(scope="session")
def custom_api(kube_client) -> kubernetes.client.CustomObjectsApi:
    return kubernetes.client.CustomObjectsApi(kube_client)


@pytest.fixture(scope="session")
def operator_database_url(admin_database_url, devenv) -> str:
    # Not migrated here: the operator applies the schema itself at start.
    return _new_database(admin_database_url, devenv, "operator")


@pytest.fixture(scope="session")
def operator(devenv, operator_database_url, tmp_path_factory):
    process = OperatorProcess(
        kubeconfig=devenv.kubeconfig,
        database_url=operator_database_url,
        log_file=tmp_path_factory.mktemp("operator") / "operator.log",
        port_options=("--metrics-port",),  # the guard's cycle count: evidence that a cycle ran
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture()
def namespace(kube_client) -> str:
    return new_namespace(kube_client, "t")


@pytest.fixture()
def patches(custom_api, namespace) -> Patches:
    return Patches(custom_api, namespace)


@pytest.fixture()
def registry(operator, operator_database_url) -> Registry:
    return Registry(operator_database_url)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `world` every test that needs the local control plane or PostgreSQL (the `devenv`
    fixture, directly or through another): `make test-fast` runs the others (`-m "not world"`)."""
    for item in items:
        if "devenv" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.world)
