"""The operator compiles on every event: operations in the registry beside the code, counts in
status, and rows written by SQL compiled before they are ever servable."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from selfheal.core.validation import validate_patch
from tests.support import wait_until


def test_synced_patch_stores_its_operations_and_counts_them_in_status(patches, registry, namespace):
    created = patches.create("compiled")
    patches.wait_condition("compiled", "Ready", status="True", generation=1)
    valid = validate_patch(created["spec"])
    row = registry.row(namespace, "compiled")
    assert (row["operations"], row["rollback_operations"]) == (valid.operations, valid.rollback_operations)
    assert row["operations"]["operations"][0] == {
        "op": "set",
        "setting": "base_url",
        "value": "https://api-backup.molam.com",
    }
    assert patches.get("compiled")["status"]["operations"] == {"patch": 2, "rollback": 1}
    [version] = registry.history(row["id"])
    assert version["operations"] == valid.operations

    patches.patch_spec("compiled", patchCode='this.timeout = 30000; this.maxRetries = 2; console.warn("slow");')
    patches.wait_condition("compiled", "Synced", status="True", generation=2)
    row = registry.row(namespace, "compiled")
    assert [op.get("setting") for op in row["operations"]["operations"]] == ["timeout_ms", "max_retries", None]
    assert patches.get("compiled")["status"]["operations"] == {"patch": 3, "rollback": 1}
    assert [len(v["operations"]["operations"]) for v in registry.history(row["id"])] == [2, 3]


def test_code_outside_the_language_is_invalid_with_the_compiler_reason(patches, registry, namespace):
    patches.create("elsewhere", patchCode='this.baseUrl = "https://api.molam.com.evil.com";')
    ready = patches.wait_condition("elsewhere", "Ready", status="False", reason="InvalidSpec")
    assert (
        "spec.patchCode: 1:16: base URL host api.molam.com.evil.com is not on the allowed host list" in ready["message"]
    )
    status = patches.get("elsewhere")["status"]
    assert "operations" not in status and status["state"] == "Invalid"
    assert registry.row(namespace, "elsewhere") is None


def test_wide_output_shows_the_operation_count(devenv, patches, namespace):
    patches.create("counted")
    patches.wait_condition("counted", "Ready", status="True")
    kubectl = [str(devenv.bin_dir / "kubectl"), "--kubeconfig", str(devenv.kubeconfig), "-n", namespace]
    wide = subprocess.run(
        [*kubectl, "get", "shp", "counted", "-o", "wide"], capture_output=True, text=True, check=True
    ).stdout
    header, line = wide.splitlines()[:2]
    assert "OPERATIONS" in header.split()
    assert line[header.index("OPERATIONS") :].split()[0] == "2"  # columns are aligned on their header
    narrow = subprocess.run([*kubectl, "get", "shp"], capture_output=True, text=True, check=True).stdout
    assert "OPERATIONS" not in narrow  # priority 1: wide output only


def _row(registry, patch_id: str) -> dict:
    return registry._query("SELECT * FROM sdk_self_healing_registry WHERE id = %s", (patch_id,))[0]


def test_sql_rows_are_compiled_before_they_are_servable(registry):
    # The runbook's "Ou via SQL" insert, with operations forged by hand: the schema drops them.
    registry.execute("""
      INSERT INTO sdk_self_healing_registry
      (id, sdk_language, error_signature, patch_code, description, severity, rollback_code, operations)
      VALUES ('sql-compiled', 'python', 'ConnectionError', 'self.base_url = "https://api-backup.molam.com"',
              'Fallback API backup pour Python', 'high', 'self.base_url = "https://api.molam.com"',
              '{"format": "selfheal.operations", "version": 1, "operations": [{"op": "exec"}]}')
    """)
    row = wait_until(
        lambda: (r := _row(registry, "sql-compiled"))["validation_state"] == "valid" and r, what="sql row compiled"
    )
    assert row["operations"]["operations"] == [
        {"op": "set", "setting": "base_url", "value": "https://api-backup.molam.com"}
    ]
    assert row["rollback_operations"]["operations"][0]["value"] == "https://api.molam.com"

    # The runbook's "Corriger et réactiver" with code outside the language: no operations, switched off.
    registry.execute("""UPDATE sdk_self_healing_registry SET patch_code = '__import__("os").system("id")',
                        updated_at = now() WHERE id = 'sql-compiled'""")
    assert _row(registry, "sql-compiled")["operations"] is None  # dropped in the same statement
    bad = wait_until(
        lambda: (r := _row(registry, "sql-compiled"))["validation_state"] == "invalid" and r, what="sql row refused"
    )
    assert bad["active"] is False and bad["operations"] is None
    assert bad["validation_message"].startswith("patch_code: 1:1: call chains are not allowed")

    # A hand-written UPDATE of anything but code keeps the compiled operations.
    registry.execute("""UPDATE sdk_self_healing_registry SET patch_code = 'self.timeout = 45', active = true
                        WHERE id = 'sql-compiled'""")
    fixed = wait_until(
        lambda: (r := _row(registry, "sql-compiled"))["validation_state"] == "valid" and r, what="sql row fixed"
    )
    registry.execute(
        "UPDATE sdk_self_healing_registry SET description = 'timeout 45 s', operations = NULL WHERE id = 'sql-compiled'"
    )
    assert _row(registry, "sql-compiled")["operations"] == fixed["operations"]
    history = registry.history("sql-compiled")
    assert history[-1]["operations"] == fixed["operations"]


def test_the_samples_all_sync_with_their_operations(patches, registry, namespace):
    samples = sorted((Path(__file__).resolve().parents[2] / "samples").glob("*.yaml"))
    for path in samples:
        sample = yaml.safe_load(path.read_text(encoding="utf-8"))
        patches.api.create_namespaced_custom_object(
            "selfheal.molam.io",
            "v1alpha1",
            namespace,
            "selfhealpatches",
            {**sample, "metadata": {"name": sample["metadata"]["name"]}},
        )
    for path in samples:
        name = path.stem
        patches.wait_condition(name, "Ready", status="True")
        row = registry.row(namespace, name)
        assert row["operations"] is not None and row["rollback_operations"] is not None, name
