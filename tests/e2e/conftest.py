"""Fixtures of the end-to-end loop, shared by the Python SDK's and the Node SDK's loop tests.

Module-scoped: each test module gets its own namespace and registry API process, on the
session's operator and registry database.
"""

from __future__ import annotations

import pytest

from tests.api_server import start_api_server
from tests.support import new_namespace


@pytest.fixture(scope="module")
def loop_namespace(kube_client) -> str:
    return new_namespace(kube_client, "e2e")


@pytest.fixture(scope="module")
def registry_api(operator, operator_database_url, devenv, loop_namespace, tmp_path_factory):
    server = start_api_server(
        database_url=operator_database_url,
        kubeconfig=devenv.kubeconfig,
        patch_namespace=loop_namespace,
        directory=tmp_path_factory.mktemp("e2e-api"),
        rate=1000,
    )  # the loop's SDK must not meet the rate limit
    yield server
    server.stop()


@pytest.fixture()
def patches_in(operator_database_url):
    import psycopg
    from psycopg.rows import dict_row

    def row(namespace: str, name: str) -> dict:
        with psycopg.connect(operator_database_url, row_factory=dict_row) as conn:
            found = conn.execute(
                "SELECT * FROM sdk_self_healing_registry WHERE source_namespace = %s AND source_name = %s",
                (namespace, name),
            ).fetchone()
        assert found is not None, f"{namespace}/{name} not in the registry"
        return found

    return row
