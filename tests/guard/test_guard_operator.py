"""The guard inside the real operator: deactivation shows in status, events; reactivation; kill switch."""

from __future__ import annotations

import os
import subprocess
import sys

import kubernetes
import psycopg

from tests.support import wait_until


def broken_traffic(url: str, patch_id: str, *, count: int = 60, rollback_share: float = 0.5) -> None:
    """`count` applications in the last second, half of them failed and rolled back."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            """INSERT INTO sdk_patch_applications (patch_id, developer_id, sdk_language, error_encountered,
                                                   success, rollback_triggered, applied_at)
               SELECT %s, 'dev-1', 'node', 'ECONNREFUSED', i >= %s, i < %s, now() - (i %% 10) * interval '50 ms'
               FROM generate_series(0, %s - 1) AS i""",
            (patch_id, int(count * rollback_share), int(count * rollback_share), count),
        )


def selfheal(devenv, *args: str, database_url: str | None = None) -> str:
    env = {**os.environ, "KUBECONFIG": str(devenv.kubeconfig)}
    env.pop("SELFHEAL_DATABASE_URL", None)
    if database_url:
        env["SELFHEAL_DATABASE_URL"] = database_url
    result = subprocess.run(
        [sys.executable, "-m", "selfheal", *args], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def warning_events(kube_client, namespace: str, name: str, reason: str) -> list:
    events = kubernetes.client.CoreV1Api(kube_client).list_namespaced_event(namespace).items
    return [e for e in events if e.involved_object.name == name and e.reason == reason and e.type == "Warning"]


def test_broken_patch_is_deactivated_within_seconds_and_comes_back_by_annotation(
    operator, patches, registry, namespace, kube_client
):
    patches.create("broken")
    patches.wait_condition("broken", "Active", status="True")
    patch_id = registry.row(namespace, "broken")["id"]
    broken_traffic(registry.url, patch_id)
    condition = patches.wait_condition("broken", "Active", status="False", reason="AutoDeactivated")
    assert "HighRollbackRate" in condition["message"] and "early cut-off" in condition["message"]
    row = registry.row(namespace, "broken")
    assert (row["active"], row["deactivation_reason"]) == (False, "AutoDeactivated")
    assert [a["action"] for a in registry.audit(patch_id)][-2:] == ["deactivate", "guard"]
    wait_until(lambda: warning_events(kube_client, namespace, "broken", "AutoDeactivated"), what="Warning event")
    guard = wait_until(
        lambda: (
            (patches.get("broken")["status"].get("guard") or {}).get("state") == "Deactivated"
            and patches.get("broken")["status"]["guard"]
        ),
        what="status.guard",
    )
    assert guard["applications24h"] == 60 and guard["rollbackPercent"] == 50.0 and guard["successPercent"] == 50.0
    assert patches.get("broken")["spec"].get("active", True) is True  # spec never written

    patches.api.patch_namespaced_custom_object(
        "selfheal.molam.io",
        "v1alpha1",
        namespace,
        "selfhealpatches",
        "broken",
        {"metadata": {"annotations": {"selfheal.molam.io/reactivate": "after-incident-1"}}},
    )
    patches.wait_condition("broken", "Active", status="True")
    assert registry.row(namespace, "broken")["active"] is True


def test_new_generation_brings_a_deactivated_patch_back(operator, patches, registry, namespace):
    patches.create("regen")
    patches.wait_condition("regen", "Active", status="True")
    broken_traffic(registry.url, registry.row(namespace, "regen")["id"])
    patches.wait_condition("regen", "Active", status="False", reason="AutoDeactivated")
    patches.patch_spec("regen", description="fixed: new version of the patch")
    patches.wait_condition("regen", "Active", status="True", generation=2)
    # The old evidence belongs to the old version: the guard does not fire again on it. Proof
    # first that it had the chance: three more cycles ended (the first may have begun before).
    cycles = operator.metric("selfheal_guard_cycle_seconds_count")
    wait_until(
        lambda: operator.metric("selfheal_guard_cycle_seconds_count") >= cycles + 3, what="three more guard cycles"
    )
    assert registry.row(namespace, "regen")["active"] is True


def test_kill_switch_command_and_enable(devenv, operator, patches, registry, namespace):
    patches.create("incident")
    patches.wait_condition("incident", "Active", status="True")
    out = selfheal(
        devenv, "disable", f"{namespace}/incident", "--reason", "INC-42 double charges", database_url=registry.url
    )
    assert "disabled" in out
    assert registry.row(namespace, "incident")["deactivation_reason"] == "ManualKillSwitch"
    condition = patches.wait_condition("incident", "Active", status="False", reason="ManualKillSwitch")
    assert "INC-42" in condition["message"]
    assert patches.get("incident")["metadata"]["annotations"]["selfheal.molam.io/disable"] == "INC-42 double charges"
    # A spec change does not lift a kill switch: the annotation keeps it off.
    patches.patch_spec("incident", description="tweaked during the incident")
    patches.wait_condition("incident", "Active", status="False", reason="ManualKillSwitch", generation=2)
    selfheal(devenv, "enable", f"{namespace}/incident", database_url=registry.url)
    patches.wait_condition("incident", "Active", status="True")
    assert "selfheal.molam.io/disable" not in patches.get("incident")["metadata"]["annotations"]


def test_kill_switch_annotation_alone_is_enforced_by_the_operator(devenv, operator, patches, registry, namespace):
    patches.create("by-annotation")
    patches.wait_condition("by-annotation", "Active", status="True")
    selfheal(devenv, "disable", "by-annotation", "-n", namespace, "--reason", "suspected bad patch")
    patches.wait_condition("by-annotation", "Active", status="False", reason="ManualKillSwitch")
    assert registry.row(namespace, "by-annotation")["active"] is False
    selfheal(devenv, "enable", "by-annotation", "-n", namespace)
    patches.wait_condition("by-annotation", "Active", status="True")


def test_spec_guard_is_bounded_by_the_schema(custom_api, namespace):
    from tests.support import patch_body

    body = patch_body("bad-guard")
    body["spec"]["guard"] = {"rollbackRate": {"threshold": 2}}
    try:
        custom_api.create_namespaced_custom_object("selfheal.molam.io", "v1alpha1", namespace, "selfhealpatches", body)
    except kubernetes.client.ApiException as error:
        assert error.status == 422 and "threshold" in error.body
    else:
        raise AssertionError("a threshold of 200 % was accepted")
    body["spec"]["guard"] = {"minSamples": 50, "earlyCutoff": False, "volume": {"perMinute": 500, "deactivate": True}}
    custom_api.create_namespaced_custom_object("selfheal.molam.io", "v1alpha1", namespace, "selfhealpatches", body)


def test_spec_guard_regression_is_bounded_by_the_schema(custom_api, namespace):
    from tests.support import patch_body

    for name, factor in (("reg-low", 1.0), ("reg-high", 25)):
        body = patch_body(name)
        body["spec"]["guard"] = {"regression": {"factor": factor}}
        try:
            custom_api.create_namespaced_custom_object(
                "selfheal.molam.io", "v1alpha1", namespace, "selfhealpatches", body
            )
        except kubernetes.client.ApiException as error:
            assert error.status == 422 and "regression.factor" in error.body, error.body
        else:
            raise AssertionError(f"a regression factor of {factor} was accepted")
    body = patch_body("reg-ok")
    body["spec"]["guard"] = {"regression": {"factor": 5, "deactivate": True, "enabled": True}}
    created = custom_api.create_namespaced_custom_object(
        "selfheal.molam.io", "v1alpha1", namespace, "selfhealpatches", body
    )
    assert created["spec"]["guard"]["regression"] == {"factor": 5, "deactivate": True, "enabled": True}
