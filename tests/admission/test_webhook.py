"""The real kube-apiserver calls the operator's real webhook (TLS, failurePolicy Fail)."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import kubernetes
import pytest
import yaml

from tests.support import OperatorProcess, new_namespace, patch_body, wait_until

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
EVIL_HOST = 'this.baseUrl = "https://api.molam.com.evil.com";'
DENIED = 'admission webhook "patch-code.selfheal.molam.io" denied the request'


@pytest.fixture(scope="module")
def guarded(kube_client) -> str:
    """A namespace of its own: the webhook of a namespaced operator guards only its namespaces."""
    return new_namespace(kube_client, "t-adm")


@pytest.fixture(scope="module")
def webhook(devenv, fresh_database, guarded, custom_api, kube_client, tmp_path_factory):
    # An invalid patch from before the webhook existed: the operator must still handle it.
    custom_api.create_namespaced_custom_object(
        "selfheal.molam.io", "v1alpha1", guarded, "selfhealpatches", patch_body("predates", patchCode=EVIL_HOST)
    )
    configuration = f"selfheal-test-{uuid.uuid4().hex[:8]}"
    process = OperatorProcess(
        kubeconfig=devenv.kubeconfig,
        database_url=fresh_database,
        log_file=tmp_path_factory.mktemp("webhook-operator") / "operator.log",
        extra_args=(
            "-n",
            guarded,
            "--webhook-host",
            "127.0.0.1",
            "--webhook-configuration",
            configuration,
        ),
        port_options=("--webhook-port",),
    )
    process.start()
    admission = kubernetes.client.AdmissionregistrationV1Api(kube_client)
    try:
        wait_until(lambda: _refused_by_webhook(custom_api, guarded), what=f"webhook serving (log: {process.log_file})")
        yield process
    finally:
        process.stop()
        admission.delete_validating_webhook_configuration(configuration)


def _refused_by_webhook(custom_api, namespace: str) -> bool:
    try:
        custom_api.create_namespaced_custom_object(
            "selfheal.molam.io",
            "v1alpha1",
            namespace,
            "selfhealpatches",
            patch_body("probe", patchCode=EVIL_HOST),
            dry_run="All",
        )
    except kubernetes.client.ApiException as error:
        return DENIED in _message(error)
    return False


def _message(error: kubernetes.client.ApiException) -> str:
    return json.loads(error.body or "{}").get("message", "")


def _kubectl(devenv, namespace: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(devenv.bin_dir / "kubectl"), "--kubeconfig", str(devenv.kubeconfig), "-n", namespace, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_configuration_is_scoped_fail_closed_and_short(webhook, kube_client, guarded):
    [item] = [
        c
        for c in kubernetes.client.AdmissionregistrationV1Api(kube_client).list_validating_webhook_configuration().items
        if c.metadata.name.startswith("selfheal-test-")
    ]
    [hook] = item.webhooks
    assert (hook.failure_policy, hook.timeout_seconds, hook.side_effects) == ("Fail", 5, "None")
    [rule] = hook.rules
    assert (rule.api_groups, rule.resources, rule.operations) == (
        ["selfheal.molam.io"],
        ["selfhealpatches"],
        ["CREATE", "UPDATE"],
    )
    assert hook.client_config.url.startswith("https://127.0.0.1:") and hook.client_config.ca_bundle


def test_kubectl_apply_of_invalid_code_fails_with_the_compiler_message(webhook, devenv, guarded):
    manifest = yaml.safe_dump(patch_body("evil-host", patchCode='console.warn("switching");\n' + EVIL_HOST))
    result = _kubectl(devenv, guarded, "apply", "-f", "-", stdin=manifest)
    assert result.returncode != 0
    assert DENIED in result.stderr
    assert "spec.patchCode: 2:16: base URL host api.molam.com.evil.com is not on the allowed host list" in result.stderr
    assert _kubectl(devenv, guarded, "get", "shp", "evil-host").returncode != 0  # never stored


def test_kubectl_apply_of_a_valid_patch_passes_and_syncs(webhook, devenv, guarded, custom_api):
    result = _kubectl(devenv, guarded, "apply", "-f", str(SAMPLES / "node-econnrefused-backup-api.yaml"))
    assert result.returncode == 0, result.stderr
    waited = _kubectl(
        devenv, guarded, "wait", "--for=condition=Ready", "shp/node-econnrefused-backup-api", "--timeout=30s"
    )
    assert waited.returncode == 0, waited.stderr


def test_every_sample_is_admitted(webhook, devenv, guarded):
    result = _kubectl(devenv, guarded, "apply", "--dry-run=server", "-f", str(SAMPLES))
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("(server dry run)") == len(list(SAMPLES.glob("*.yaml")))


def test_an_update_to_invalid_code_is_refused(webhook, custom_api, guarded):
    custom_api.create_namespaced_custom_object(
        "selfheal.molam.io", "v1alpha1", guarded, "selfhealpatches", patch_body("updated")
    )
    with pytest.raises(kubernetes.client.ApiException) as caught:
        custom_api.patch_namespaced_custom_object(
            "selfheal.molam.io",
            "v1alpha1",
            guarded,
            "selfhealpatches",
            "updated",
            {"spec": {"rollbackCode": 'require("fs");'}},
        )
    assert caught.value.status == 422
    assert DENIED in _message(caught.value)
    assert "spec.rollbackCode: 1:1: call must be this.<name> or console.<name>" in _message(caught.value)


def test_objects_that_predate_the_webhook_are_still_validated_and_can_be_released(webhook, custom_api, guarded):
    def ready_reason():
        body = custom_api.get_namespaced_custom_object(
            "selfheal.molam.io", "v1alpha1", guarded, "selfhealpatches", "predates"
        )
        return next((c for c in (body.get("status") or {}).get("conditions") or [] if c["type"] == "Ready"), None)

    condition = wait_until(
        lambda: (c := ready_reason()) and c["reason"] == "InvalidSpec" and c,
        what="predates marked invalid by the operator",
    )
    assert "not on the allowed host list" in condition["message"]
    # Metadata changes pass the webhook (the operator's finalizer did too); spec changes are checked.
    custom_api.patch_namespaced_custom_object(
        "selfheal.molam.io",
        "v1alpha1",
        guarded,
        "selfhealpatches",
        "predates",
        {"metadata": {"labels": {"reviewed": "yes"}}},
    )
    with pytest.raises(kubernetes.client.ApiException, match="422"):
        custom_api.patch_namespaced_custom_object(
            "selfheal.molam.io",
            "v1alpha1",
            guarded,
            "selfhealpatches",
            "predates",
            {"spec": {"description": "still evil"}},
        )
    custom_api.delete_namespaced_custom_object("selfheal.molam.io", "v1alpha1", guarded, "selfhealpatches", "predates")

    def gone() -> bool:
        try:
            custom_api.get_namespaced_custom_object(
                "selfheal.molam.io", "v1alpha1", guarded, "selfhealpatches", "predates"
            )
        except kubernetes.client.ApiException as error:
            return error.status == 404
        return False

    wait_until(gone, what="finalizer released through the webhook")


def test_with_the_webhook_down_only_selfhealpatches_are_blocked(webhook, custom_api, kube_client, guarded):
    webhook.stop()  # the configuration stays: fail closed
    try:
        core = kubernetes.client.CoreV1Api(kube_client)
        core.create_namespaced_config_map(guarded, {"metadata": {"name": "unaffected"}, "data": {"a": "b"}})
        with pytest.raises(kubernetes.client.ApiException) as caught:
            custom_api.create_namespaced_custom_object(
                "selfheal.molam.io", "v1alpha1", guarded, "selfhealpatches", patch_body("while-down")
            )
        assert caught.value.status == 500
        assert 'failed calling webhook "patch-code.selfheal.molam.io"' in _message(caught.value)
        # Another namespace is not guarded by this (namespaced) operator's webhook.
        other = new_namespace(kube_client, "t")
        custom_api.create_namespaced_custom_object(
            "selfheal.molam.io", "v1alpha1", other, "selfhealpatches", patch_body("elsewhere")
        )
    finally:
        # Serving again for whatever test runs next (the module's tests run in any order).
        webhook.start()
        wait_until(lambda: _refused_by_webhook(custom_api, guarded), what="webhook serving again")
