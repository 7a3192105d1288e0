"""Property-based fuzzing of every route in the OpenAPI document: no input gives a 5xx.

schemathesis generates requests from docs/openapi.json (valid and invalid bodies, paths and
query strings) and sends them over real HTTP to a real `selfheal api`, authenticated as a
dev_admin so that every route is reached past authentication.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from selfheal.api.openapi import document
from tests.api_server import start_api_server
from tests.support import new_namespace

schema = schemathesis.openapi.from_dict(document())
schema.config.generation.update(modes=list(schemathesis.GenerationMode))  # valid and invalid inputs


@pytest.fixture(scope="module")
def fuzzed_api(fresh_database, tmp_path_factory, devenv, kube_client):
    namespace = new_namespace(kube_client, "fuzz")
    server = start_api_server(
        database_url=fresh_database,
        kubeconfig=devenv.kubeconfig,
        patch_namespace=namespace,
        directory=tmp_path_factory.mktemp("fuzz-api"),
        rate=10_000,
    )
    server.admin_token = server.token("fuzzer", role="dev_admin")
    yield server
    server.stop()


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_route_answers_5xx(case, fuzzed_api):
    response = case.call(
        base_url=fuzzed_api.url, headers={"Authorization": f"Bearer {fuzzed_api.admin_token}"}, timeout=10
    )
    assert response.status_code < 500, (case.method, case.path, case.body, response.status_code, response.text[:500])
