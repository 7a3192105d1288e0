"""A world of this directory's own (kube-apiserver, etcd, PostgreSQL) and an operator serving its
/metrics: the session's operator serves none, and two operators on one control plane would both
handle the same objects. Each test gets its own registry API and Prometheus (fresh counters and a
fresh TSDB), so no test sees another's traffic in its alerts."""

from __future__ import annotations

import pytest

from tests.conftest import _new_database
from tests.support import OperatorProcess, free_port, new_namespace, own_world_fixtures

devenv, admin_database_url, kube_client, custom_api = own_world_fixtures("selfheal-alerts-devenv-")


@pytest.fixture(scope="module")
def database_url(devenv, admin_database_url) -> str:
    return _new_database(admin_database_url, devenv, "alerts")


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
