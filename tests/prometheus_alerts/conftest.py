"""A world of this directory's own (kube-apiserver, etcd, PostgreSQL) and an operator serving its
/metrics: the session's operator serves none, and two operators on one control plane would both
handle the same objects. Each test gets its own registry API and Prometheus (fresh counters and a
fresh TSDB), so no test sees another's traffic in its alerts."""

from __future__ import annotations

import kubernetes
import pytest

from tests.conftest import _new_database
from tests.support import OperatorProcess, free_port, new_namespace, own_world


@pytest.fixture(scope="module")
def devenv():
    with own_world("selfheal-alerts-devenv-") as env:
        yield env


@pytest.fixture(scope="module")
def database_url(devenv) -> str:
    return _new_database(devenv.postgres.url("postgres"), devenv, "alerts")


@pytest.fixture(scope="module")
def kube_client(devenv) -> kubernetes.client.ApiClient:
    return kubernetes.config.new_client_from_config(config_file=str(devenv.kubeconfig))


@pytest.fixture(scope="module")
def custom_api(kube_client) -> kubernetes.client.CustomObjectsApi:
    return kubernetes.client.CustomObjectsApi(kube_client)


@pytest.fixture(scope="module")
def metrics_operator(devenv, database_url, tmp_path_factory) -> OperatorProcess:
    """`selfheal operator --metrics-port`; `metrics_target` is its host:port for Prometheus."""
    port = free_port()
    process = OperatorProcess(
        kubeconfig=devenv.kubeconfig,
        database_url=database_url,
        log_file=tmp_path_factory.mktemp("alerts-operator") / "operator.log",
        extra_args=("--metrics-port", str(port)),
    )
    process.metrics_target = f"127.0.0.1:{port}"  # type: ignore[attr-defined]
    process.start()
    yield process
    process.stop()


@pytest.fixture()
def namespace(kube_client) -> str:
    return new_namespace(kube_client, "alerts")
