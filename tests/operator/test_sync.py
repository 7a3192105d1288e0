"""A SelfHealPatch becomes exactly one registry row, whatever happens to its events."""

from __future__ import annotations

import asyncio
import subprocess

import psycopg

from selfheal.core.validation import validate_patch
from selfheal.registry import store
from tests.support import wait_until


def test_valid_patch_becomes_an_equal_registry_row(patches, registry, namespace):
    created = patches.create("backup-api")
    patches.wait_condition("backup-api", "Ready", status="True", generation=1)
    row = registry.row(namespace, "backup-api")
    spec = created["spec"]
    assert (
        row["sdk_language"],
        row["error_signature"],
        row["patch_code"],
        row["rollback_code"],
        row["description"],
        row["severity"],
        row["version"],
        row["active"],
    ) == (
        spec["sdkLanguage"],
        spec["errorSignature"],
        spec["patchCode"],
        spec["rollbackCode"],
        spec["description"],
        spec["severity"],
        "1.0.0",
        True,
    )
    assert (row["source_uid"], row["source_generation"], row["validation_state"]) == (
        created["metadata"]["uid"],
        1,
        "valid",
    )
    status = patches.get("backup-api")["status"]
    assert (status["state"], status["registryId"], status["registryVersion"]) == ("Active", row["id"], "1.0.0")
    assert [h["version"] for h in registry.history(row["id"])] == ["1.0.0"]
    assert [(a["action"], a["actor"]) for a in registry.audit(row["id"])] == [("create", "operator")]


def test_kubectl_wait_and_columns(devenv, patches, registry, namespace):
    patches.create("wait-me", severity="medium")
    kubectl = [str(devenv.bin_dir / "kubectl"), "--kubeconfig", str(devenv.kubeconfig), "-n", namespace]
    waited = subprocess.run(
        [*kubectl, "wait", "--for=condition=Ready", "shp/wait-me", "--timeout=30s"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert waited.returncode == 0, waited.stderr
    table = subprocess.run([*kubectl, "get", "selfhealpatches"], capture_output=True, text=True, check=True).stdout
    header, line = table.splitlines()[:2]
    assert header.split() == [
        "NAME",
        "LANGUAGE",
        "SIGNATURE",
        "SEVERITY",
        "VERSION",
        "STATE",
        "REASON",
        "SUCCESS%",
        "ROLLBACK%",
        "AGE",
    ]
    assert line.split()[:7] == ["wait-me", "node", "ECONNREFUSED", "medium", "1.0.0", "Active", "Synced"]
    wide = subprocess.run([*kubectl, "get", "shp", "-o", "wide"], capture_output=True, text=True, check=True).stdout
    assert "GUARD" in wide and "APPLICATIONS-24H" in wide
    assert "REGISTRY-VERSION" in wide and "REGISTRY-ID" in wide and registry.row(namespace, "wait-me")["id"] in wide


def test_every_spec_change_increments_the_version(patches, registry, namespace):
    patches.create("evolving")
    patches.wait_condition("evolving", "Ready", status="True", generation=1)
    patches.patch_spec("evolving", patchCode='this.baseUrl = "https://api-backup.molam.com/v2";')
    patches.wait_condition("evolving", "Synced", status="True", generation=2)
    assert registry.row(namespace, "evolving")["version"] == "1.0.1"
    patches.patch_spec("evolving", version="2.0.0", description="Fallback vers API de backup 2")
    patches.wait_condition("evolving", "Synced", status="True", generation=3)
    row = registry.row(namespace, "evolving")
    assert (row["version"], row["revision"], row["source_generation"]) == ("2.0.0", 3, 3)
    history = registry.history(row["id"])
    assert [(h["revision"], h["version"], h["source_generation"]) for h in history] == [
        (1, "1.0.0", 1),
        (2, "1.0.1", 2),
        (3, "2.0.0", 3),
    ]
    assert history[1]["patch_code"] == 'this.baseUrl = "https://api-backup.molam.com/v2";'
    assert patches.get("evolving")["status"]["registryVersion"] == "2.0.0"


def test_status_only_update_writes_nothing(patches, registry, namespace):
    patches.create("quiet")
    patches.wait_condition("quiet", "Ready", status="True", generation=1)
    before = registry.row(namespace, "quiet")
    audit_before = registry.audit(before["id"])
    patches.patch_status("quiet", {"registryVersion": "tampered"})
    # The registry watch puts the truth back into status; the database is not written.
    wait_until(lambda: patches.get("quiet")["status"].get("registryVersion") == "1.0.0", what="status repaired")
    after = registry.row(namespace, "quiet")
    assert after["tuple_version"] == before["tuple_version"]
    assert registry.audit(before["id"]) == audit_before


def test_replayed_and_reordered_events_leave_one_row_at_latest_generation(registry, operator_database_url):
    """Drives the registry writer directly with events in a hostile order."""
    raw_v1 = {
        "sdkLanguage": "python",
        "errorSignature": "Timeout",
        "patchCode": "self.timeout = 30",
        "rollbackCode": "self.timeout = 10",
        "description": "timeout",
    }
    v1, v2 = validate_patch(raw_v1), validate_patch({**raw_v1, "patchCode": "self.timeout = 60"})
    gen = lambda n: store.PatchSource(namespace="replay", name="timeout", uid="uid-1", generation=n)
    sync = lambda conn, n, valid: store.sync_patch(
        conn, source=gen(n), spec=valid.spec, operations=valid.operations, rollback_operations=valid.rollback_operations
    )

    async def play():
        async with await psycopg.AsyncConnection.connect(operator_database_url) as conn:
            first = await sync(conn, 2, v2)
            stale = await sync(conn, 1, v1)  # arrives late
            replay = await sync(conn, 2, v2)  # duplicate
            return first, stale, replay

    first, stale, replay = asyncio.run(play())
    assert first.written and not stale.written and not replay.written
    [row] = registry.rows("replay", "timeout")
    assert (row["patch_code"], row["source_generation"], row["version"]) == ("self.timeout = 60", 2, "1.0.0")
    assert row["operations"] == v2.operations
    assert len(registry.audit(row["id"])) == 1


def test_operator_restart_resumes_without_duplicate_writes(operator, patches, registry, namespace):
    for name in ("resume-a", "resume-b"):
        patches.create(name)
        patches.wait_condition(name, "Ready", status="True")
    rows = {name: registry.row(namespace, name) for name in ("resume-a", "resume-b")}
    audits = {name: registry.audit(row["id"]) for name, row in rows.items()}
    operator.restart()
    # A change made after the restart proves the operator is handling events again.
    patches.patch_spec("resume-b", description="changed after restart")
    # Late in a test session the restarted operator resumes hundreds of objects first.
    patches.wait_condition("resume-b", "Synced", status="True", generation=2, timeout=120)
    assert registry.row(namespace, "resume-a")["tuple_version"] == rows["resume-a"]["tuple_version"]
    assert registry.audit(rows["resume-a"]["id"]) == audits["resume-a"]
    assert len(registry.audit(rows["resume-b"]["id"])) == len(audits["resume-b"]) + 1
