"""The registry API tests run against a real `selfheal api` process and the test PostgreSQL."""

from __future__ import annotations

import pytest

from tests.api_server import start_api_server
from tests.support import new_namespace


@pytest.fixture(scope="module")
def api_server(fresh_database, tmp_path_factory, devenv, kube_client):
    namespace = new_namespace(kube_client, "devportal")
    server = start_api_server(
        database_url=fresh_database,
        kubeconfig=devenv.kubeconfig,
        patch_namespace=namespace,
        directory=tmp_path_factory.mktemp("api"),
    )
    yield server
    server.stop()
