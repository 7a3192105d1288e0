"""PostgreSQL stopped mid-run: status says so, the operator retries, nothing is lost."""

from __future__ import annotations

from selfheal.devenv import environment
from tests.support import wait_until


def test_database_outage_loses_nothing(devenv, operator, patches, registry, namespace):
    patches.create("before-outage")
    patches.create("deleted-during-outage")
    for name in ("before-outage", "deleted-during-outage"):
        patches.wait_condition(name, "Ready", status="True")

    environment.stop_database(devenv)
    try:
        patches.create("created-during-outage", errorSignature="ETIMEDOUT")
        patches.patch_spec("before-outage", version="3.0.0")
        patches.delete("deleted-during-outage")
        synced = patches.wait_condition(
            "created-during-outage", "Synced", status="False", reason="RegistryUnavailable", timeout=60
        )
        assert "registry unreachable" in synced["message"]
        assert patches.get("created-during-outage")["status"]["state"] == "Pending"
        patches.wait_condition(
            "before-outage", "Synced", status="False", reason="RegistryUnavailable", generation=2, timeout=60
        )
        assert patches.exists("deleted-during-outage")  # the finalizer waits for the registry
    finally:
        environment.start_database(devenv)

    patches.wait_condition("created-during-outage", "Ready", status="True", timeout=90)
    patches.wait_condition("before-outage", "Synced", status="True", generation=2, timeout=90)
    wait_until(lambda: not patches.exists("deleted-during-outage"), timeout=90, what="delete completed")
    assert registry.row(namespace, "created-during-outage")["active"] is True
    assert registry.row(namespace, "before-outage")["version"] == "3.0.0"
    deleted = registry.row(namespace, "deleted-during-outage")
    assert (deleted["active"], deleted["deactivation_reason"]) == (False, "Deleted")
