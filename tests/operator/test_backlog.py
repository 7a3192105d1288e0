"""The operator started over a backlog: every object Ready, no handler failing for want of a connection.

Hundreds of SelfHealPatch objects exist before the operator starts, its pool has 2 connections and
the registry is slow (a trigger makes every row write take 40 ms). Handlers that each waited for a
connection of their own gave up after the pool's 5 s ("couldn't get a connection") and retried;
their writes now queue and are committed in batches, so none fails.
"""

from __future__ import annotations

import re

import kubernetes
import psycopg
import pytest

from selfheal.core.resource import GROUP, PLURAL, VERSION
from tests.support import OperatorProcess, Patches, new_namespace, own_world_fixtures, wait_until

BACKLOG = 300
SLOW_WRITES = """
CREATE FUNCTION test_slow_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_sleep(0.04); RETURN NEW; END $$;
CREATE TRIGGER test_slow_write BEFORE INSERT OR UPDATE ON sdk_self_healing_registry
  FOR EACH ROW EXECUTE FUNCTION test_slow_write();
"""


# A control plane of this module's own: the session's operator watches every namespace of the
# shared one and would handle the backlog first (into its own registry).
devenv, admin_database_url, kube_client, custom_api = own_world_fixtures("selfheal-backlog-devenv-")


@pytest.fixture()
def database_url(devenv, admin_database_url) -> str:
    from selfheal.registry.migrate import migrate
    from tests.conftest import _new_database

    url = _new_database(admin_database_url, devenv, "backlog")
    migrate(url)  # before the slow-write trigger goes on its table
    return url


def _ready(obj: dict) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" and c.get("observedGeneration") == 1 for c in conditions)


def test_backlog_with_a_small_pool_becomes_ready_without_handler_failures(devenv, kube_client, database_url, tmp_path):
    namespace = new_namespace(kube_client, "backlog")
    custom = kubernetes.client.CustomObjectsApi(kube_client)
    patches = Patches(custom, namespace)
    for index in range(BACKLOG):
        patches.create(f"p{index:03d}", errorSignature=f"E{index:03d}")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(SLOW_WRITES)

    operator = OperatorProcess(
        kubeconfig=devenv.kubeconfig,
        database_url=database_url,
        log_file=tmp_path / "operator.log",
        extra_args=("-n", namespace, "--registry-pool-size", "2"),
    )
    operator.start()
    try:

        def not_ready() -> list[str]:
            items = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"]
            return [obj["metadata"]["name"] for obj in items if not _ready(obj)]

        # A hang guard only: how fast the backlog goes is bench/operator_scale.py's figure.
        wait_until(lambda: not not_ready(), timeout=600, what=f"all {BACKLOG} objects Ready")
    finally:
        operator.stop()

    log = operator.log_file.read_text(errors="replace")
    assert re.findall(r"Handler '[^']+' failed.*", log) == []
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE active AND source_generation = 1)"
            " FROM sdk_self_healing_registry WHERE source_namespace = %s",
            (namespace,),
        ).fetchone()
    assert rows == (BACKLOG, BACKLOG)
