"""Every overlay is accepted by the real API server, and says what the issue asks of it."""

from __future__ import annotations

import copy

import click
import pytest
import yaml

from selfheal.cli import main
from tests.manifests.conftest import MANIFESTS, OVERLAYS, build, find, kubectl

RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_passes_a_server_side_dry_run(devenv, third_party_crds, selfheal_namespace, overlay):
    objects = build(devenv, overlay)
    result = kubectl(devenv, "apply", "-k", str(MANIFESTS / "overlays" / overlay), "--dry-run=server")
    accepted = [line for line in result.stdout.splitlines() if line.endswith("(server dry run)")]
    assert len(accepted) == len(objects), result.stdout
    # The namespace enforces the restricted Pod Security Standard; the API server warns about any
    # pod template that would be refused (see the next test for such a warning).
    assert "PodSecurity" not in result.stderr, result.stderr


def test_a_pod_template_outside_the_restricted_standard_is_reported(devenv, selfheal_namespace):
    deployment = copy.deepcopy(find(build(devenv, "local"), "Deployment", "selfheal-operator"))
    del deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]
    result = kubectl(devenv, "apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump(deployment))
    assert "would violate PodSecurity" in result.stderr


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_workloads_are_restricted_limited_and_take_secrets_by_reference(devenv, overlay):
    objects = build(devenv, overlay)
    assert not [o for o in objects if o["kind"] == "Secret"], "no Secret in Git"
    for workload in (o for o in objects if o["kind"] in ("Deployment", "Job")):
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in pod["containers"]:
            assert RESTRICTED_CONTAINER.items() <= container["securityContext"].items(), workload["metadata"]["name"]
            assert {"cpu", "memory"} <= container["resources"]["limits"].keys()
            database = next(e for e in container["env"] if e["name"] == "SELFHEAL_DATABASE_URL")
            assert database["valueFrom"]["secretKeyRef"]["key"] == "url"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_operator_replicas_elect_a_leader_with_probes_a_budget_and_without_migrating(devenv, overlay):
    objects = build(devenv, overlay)
    operator = find(objects, "Deployment", "selfheal-operator")
    # Two replicas, one acting (Lease); a rollout adds a pod before removing one.
    assert operator["spec"]["replicas"] == 2
    assert operator["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    budget = find(objects, "PodDisruptionBudget", "selfheal-operator")
    assert budget["spec"]["minAvailable"] == 1
    assert budget["spec"]["selector"]["matchLabels"] == operator["spec"]["selector"]["matchLabels"]
    pod = operator["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert pod["serviceAccountName"] == "selfheal-operator"
    assert "--no-migrate" in container["args"] and "--liveness-port=8080" in container["args"]
    assert "--leader-election" in container["args"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    pod_name = next(e for e in container["env"] if e["name"] == "POD_NAME")
    assert pod_name["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    health = next(p for p in container["ports"] if p["name"] == "health")
    assert health["containerPort"] == 8080 and container["livenessProbe"]["httpGet"]["port"] == "health"
    webhook_args = [a for a in container["args"] if a.startswith("--webhook-")]
    configurations = [o for o in objects if o["kind"] == "ValidatingWebhookConfiguration"]
    assert bool(webhook_args) == bool(configurations) == (overlay == "production")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_registry_api_has_the_runbook_names_replicas_and_a_disruption_budget(devenv, overlay):
    objects = build(devenv, overlay)
    api = find(objects, "Deployment", "devportal-api")
    service = find(objects, "Service", "devportal")
    assert service["spec"]["ports"] == [{"name": "http", "port": 8140, "targetPort": "http"}]
    labels = api["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    budget = find(objects, "PodDisruptionBudget", "devportal-api")
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    [container] = api["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert api["spec"]["replicas"] == (3 if overlay == "production" else 1)
    if overlay == "production":
        kinds = {o["kind"] for o in objects}
        assert {"ServiceMonitor", "PrometheusRule", "NetworkPolicy", "Certificate"} <= kinds


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_container_arguments_are_flags_selfheal_knows(devenv, overlay, tmp_path, monkeypatch):
    """Parsed by the real command line, so that a renamed flag cannot break a deployment silently."""
    for name in ("ca.crt", "tls.crt", "tls.key", "signing.pem"):
        (tmp_path / name).write_text("")
    monkeypatch.setenv("SELFHEAL_DATABASE_URL", "postgresql://parsed-only/db")
    monkeypatch.setenv("SELFHEAL_SIGNING_KEY_FILE", str(tmp_path / "signing.pem"))
    for workload in (o for o in build(devenv, overlay) if o["kind"] in ("Deployment", "Job")):
        [container] = workload["spec"]["template"]["spec"]["containers"]
        command, *args = container["args"]
        args = [a.replace("/etc/selfheal/webhook", str(tmp_path)) for a in args]
        subcommand = main.get_command(click.Context(main), command)
        assert subcommand is not None, command
        subcommand.make_context(command, list(args))  # raises click.UsageError on an unknown flag
