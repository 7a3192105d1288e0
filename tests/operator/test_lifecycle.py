"""Deactivation paths: spec.active, delete, and the runbook's own SQL."""

from __future__ import annotations

from tests.support import wait_until


def test_spec_active_false_deactivates_and_true_brings_it_back(patches, registry, namespace):
    patches.create("toggle")
    patches.wait_condition("toggle", "Active", status="True")
    patches.patch_spec("toggle", active=False)
    patches.wait_condition("toggle", "Active", status="False", reason="SpecInactive", generation=2)
    row = registry.row(namespace, "toggle")
    assert (row["active"], row["deactivation_reason"], row["version"]) == (False, "SpecInactive", "1.0.0")
    assert patches.get("toggle")["status"]["state"] == "Inactive"
    patches.patch_spec("toggle", active=True)
    patches.wait_condition("toggle", "Active", status="True", generation=3)
    assert registry.row(namespace, "toggle")["active"] is True


def test_delete_leaves_an_inactive_row_with_its_history(patches, registry, namespace):
    patches.create("doomed")
    patches.wait_condition("doomed", "Ready", status="True")
    patches.patch_spec("doomed", patchCode='this.baseUrl = "https://api-backup.molam.com/v3";')
    patches.wait_condition("doomed", "Synced", status="True", generation=2)
    assert patches.get("doomed")["metadata"]["finalizers"] == ["selfheal.molam.io/registry"]
    patches.delete("doomed")
    wait_until(lambda: not patches.exists("doomed"), what="finalizer released")
    row = registry.row(namespace, "doomed")
    assert (row["active"], row["deactivation_reason"]) == (False, "Deleted")
    assert [h["version"] for h in registry.history(row["id"])] == ["1.0.0", "1.0.1"]
    assert registry.audit(row["id"])[-1]["action"] == "deactivate"


def test_runbook_sql_deactivation_shows_in_status_and_is_not_reverted(operator, patches, registry, namespace):
    patches.create("incident")
    patches.wait_condition("incident", "Active", status="True")
    patch_id = registry.row(namespace, "incident")["id"]
    # The runbook's "Désactiver un patch / Via SQL", verbatim but for the id.
    registry.execute(f"""
      UPDATE sdk_self_healing_registry
      SET active = false, updated_at = now()
      WHERE id = '{patch_id}';
    """)
    condition = patches.wait_condition("incident", "Active", status="False", reason="DeactivatedInRegistry")
    assert "sql:" in condition["message"]
    assert patches.get("incident")["status"]["state"] == "Inactive"
    # Neither a restart (resume) nor a label change brings it back.
    operator.restart()
    patches.api.patch_namespaced_custom_object(
        "selfheal.molam.io",
        "v1alpha1",
        namespace,
        "selfhealpatches",
        "incident",
        {"metadata": {"labels": {"touched": "yes"}}},
    )
    patches.wait_condition("incident", "Active", status="False", reason="DeactivatedInRegistry")
    assert registry.row(namespace, "incident")["active"] is False
    # A new spec generation is the explicit way back.
    patches.patch_spec("incident", description="fixed after the incident")
    patches.wait_condition("incident", "Active", status="True", generation=2)
    assert registry.row(namespace, "incident")["active"] is True


def test_sql_written_patch_is_validated_before_it_is_served(registry):
    registry.execute("""
      INSERT INTO sdk_self_healing_registry
      (id, sdk_language, error_signature, patch_code, description, severity, rollback_code)
      VALUES ('sql-good', 'python', 'ConnectionError', 'self.base_url = "https://api-backup.molam.com"',
              'Fallback API backup pour Python', 'high', 'self.base_url = "https://api.molam.com"'),
             ('sql-bad', 'python', 'ConnectionError', 'self.base_url = "https://api-backup.molam.com',
              'broken by hand', 'high', 'self.base_url = "https://api.molam.com"')
    """)
    state = lambda patch_id: registry._query(
        "SELECT active, validation_state, validation_message FROM sdk_self_healing_registry WHERE id = %s", (patch_id,)
    )[0]
    wait_until(lambda: state("sql-good")["validation_state"] == "valid", what="sql-good validated")
    bad = wait_until(lambda: (s := state("sql-bad"))["validation_state"] == "invalid" and s, what="sql-bad rejected")
    assert bad["active"] is False and bad["validation_message"].startswith("patch_code: 1:")
    # The runbook's "Corriger et réactiver": a fix by SQL is validated again.
    registry.execute("""UPDATE sdk_self_healing_registry SET patch_code = 'self.base_url = "https://api-backup.molam.com"',
                        active = true, updated_at = now() WHERE id = 'sql-bad'""")
    fixed = wait_until(lambda: (s := state("sql-bad"))["validation_state"] == "valid" and s, what="sql-bad fixed")
    assert fixed["active"] is True
