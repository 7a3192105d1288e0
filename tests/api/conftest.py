"""The registry API tests run against a real `selfheal api` process and the test PostgreSQL."""

from __future__ import annotations

import uuid

import kubernetes
import pytest

from tests.api_server import start_api_server


@pytest.fixture(scope="module")
def api_server(fresh_database, tmp_path_factory, devenv, kube_client):
    namespace = f"devportal-{uuid.uuid4().hex[:8]}"
    kubernetes.client.CoreV1Api(kube_client).create_namespace({"metadata": {"name": namespace}})
    server = start_api_server(database_url=fresh_database, kubeconfig=devenv.kubeconfig, patch_namespace=namespace,
                              directory=tmp_path_factory.mktemp("api"))
    yield server
    server.stop()
