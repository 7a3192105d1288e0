"""charts/selfheal: `helm lint` passes; with default values it renders the production overlay's
objects (the differences below are Helm's own, on purpose); each value changes what it says and
nothing else; bad values are refused naming the value; the API server accepts what it renders."""

from __future__ import annotations

import copy
import json

import click
import pytest
import yaml

from selfheal.cli import main
from tests.charts.conftest import CHART, NAMESPACE, run_helm, template
from tests.manifests.conftest import build, kubectl

# The first test builds helm when it is not cached (hack/helm/build.sh, minutes on a cold Go cache;
# `make test` builds it before pytest, so this is only a fallback for a lone run).
pytestmark = pytest.mark.timeout(1800)

HELM_LABELS = ("app.kubernetes.io/managed-by", "helm.sh/chart")
# The migrate Job runs before install and upgrade, as Argo CD's PreSync hook does for kustomize.
HELM_HOOK = {"helm.sh/hook": "pre-install,pre-upgrade", "helm.sh/hook-delete-policy": "before-hook-creation"}
WEBHOOK_OBJECTS = {
    ("Issuer", "selfheal-selfsigned"),
    ("Certificate", "selfheal-operator-webhook"),
    ("Service", "selfheal-operator-webhook"),
    ("ValidatingWebhookConfiguration", "selfheal-patch-code"),
    ("NetworkPolicy", "selfheal-operator-webhook-ingress"),
}
MONITORING_OBJECTS = {
    ("ServiceMonitor", "selfheal-operator"),
    ("ServiceMonitor", "devportal-api"),
    ("PrometheusRule", "selfheal"),
    ("ConfigMap", "selfheal-grafana-dashboard"),
}


def key(document: dict) -> tuple[str, str | None, str]:
    return document["kind"], document["metadata"].get("namespace"), document["metadata"]["name"]


def names(objects: list[dict]) -> set[tuple[str, str]]:
    return {(o["kind"], o["metadata"]["name"]) for o in objects}


def find(objects: list[dict], kind: str, name: str) -> dict:
    [found] = [o for o in objects if (o["kind"], o["metadata"]["name"]) == (kind, name)]
    return found


def without_helms_own(document: dict) -> dict:
    """The object as kustomize would write it: Helm's labels and hook annotations taken off."""
    document = copy.deepcopy(document)
    metadata = document["metadata"]
    if document["kind"] == "CustomResourceDefinition":
        # Helm installs crds/ as they are (never templated, never upgraded or deleted by a release):
        # the CRD carries no label; kustomize's has the tree's common label.
        assert "labels" not in metadata
        metadata["labels"] = {"app.kubernetes.io/part-of": "selfheal"}
        return document
    labels = metadata.get("labels", {})
    assert labels.get("app.kubernetes.io/managed-by") == "Helm" and labels.get("helm.sh/chart") == "selfheal-0.1.0"
    for label in HELM_LABELS:
        del labels[label]
    annotations = metadata.get("annotations", {})
    if document["kind"] == "Job":
        assert HELM_HOOK.items() <= annotations.items()
        for annotation in HELM_HOOK:
            del annotations[annotation]
    return document


def operator_container(objects: list[dict]) -> dict:
    [container] = find(objects, "Deployment", "selfheal-operator")["spec"]["template"]["spec"]["containers"]
    return container


def test_helm_lint(helm):
    result = run_helm(helm, "lint", "--strict", str(CHART))
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout, result.stdout


def test_default_values_render_the_production_overlay(devenv, helm):
    overlay = build(devenv, "production")
    # Intended difference: the Namespace. A Helm release lives in its namespace (its record is a
    # Secret there), so the namespace exists before the chart: `helm install --create-namespace`, or
    # created and labelled for the restricted Pod Security Standard beforehand (README, "Helm chart").
    [namespace] = [o for o in overlay if o["kind"] == "Namespace"]
    assert namespace["metadata"]["name"] == NAMESPACE
    expected = {key(o): o for o in overlay if o["kind"] != "Namespace"}
    rendered = {key(o): without_helms_own(o) for o in template(helm)}
    assert rendered.keys() == expected.keys()
    for name, document in expected.items():
        assert rendered[name] == document, name


def test_replicas_and_resources(helm):
    resources = {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "3", "memory": "2Gi"}}
    objects = template(helm, "--set", "api.replicas=5", "--set-json", f"api.resources={json.dumps(resources)}")
    api = find(objects, "Deployment", "devportal-api")
    assert api["spec"]["replicas"] == 5
    assert api["spec"]["template"]["spec"]["containers"][0]["resources"] == resources
    default = template(helm)
    assert find(objects, "Deployment", "selfheal-operator") == find(default, "Deployment", "selfheal-operator")
    assert (
        find(objects, "Deployment", "devportal-api")["spec"]["template"]["spec"]["containers"][0]["image"]
        == "ghcr.io/molam/selfheal:0.1.0"
    )


def test_image(helm):
    objects = template(
        helm,
        "--set",
        "image.repository=registry.example/selfheal",
        "--set",
        "image.tag=1.2.3",
        "--set",
        "image.pullPolicy=Always",
    )
    containers = [
        c for o in objects if o["kind"] in ("Deployment", "Job") for c in o["spec"]["template"]["spec"]["containers"]
    ]
    assert len(containers) == 3
    assert {(c["image"], c["imagePullPolicy"]) for c in containers} == {("registry.example/selfheal:1.2.3", "Always")}


def test_webhook_off_removes_the_webhook_objects(helm):
    default, objects = template(helm), template(helm, "--set", "webhook.enabled=false")
    assert names(default) - names(objects) == WEBHOOK_OBJECTS
    assert names(objects) <= names(default)
    container = operator_container(objects)
    assert not [a for a in container["args"] if a.startswith("--webhook")]
    assert "webhook" not in json.dumps(find(objects, "Deployment", "selfheal-operator"))
    assert [a for a in operator_container(default)["args"] if a.startswith("--webhook")]


def test_monitoring_labels_land_on_servicemonitors_and_the_prometheusrule(helm):
    default = {key(o): o for o in template(helm)}
    objects = template(helm, "--set-json", 'monitoring.labels={"release": "kube-prometheus-stack", "team": "pay"}')
    labelled = {
        (o["kind"], o["metadata"]["name"])
        for o in objects
        if o["metadata"].get("labels", {}).get("release") == "kube-prometheus-stack"
        and o["metadata"]["labels"].get("team") == "pay"
    }
    assert labelled == MONITORING_OBJECTS - {("ConfigMap", "selfheal-grafana-dashboard")}
    for document in objects:  # nothing else changed
        if (document["kind"], document["metadata"]["name"]) not in labelled:
            assert document == default[key(document)]


def test_monitoring_off(helm):
    assert names(template(helm)) - names(template(helm, "--set", "monitoring.enabled=false")) == MONITORING_OBJECTS


def test_watched_namespaces_are_flags_the_operator_knows(helm, tmp_path, monkeypatch):
    objects = template(helm, "--set-json", 'watchNamespaces=["team-a", "team-b"]')
    args = operator_container(objects)["args"]
    assert [a for a in args if a.startswith("--namespace")] == ["--namespace=team-a", "--namespace=team-b"]
    assert "--namespace" not in " ".join(operator_container(template(helm))["args"])
    # Parsed by the real command line, so that a renamed flag cannot break a release silently.
    for name in ("ca.crt", "tls.crt", "tls.key"):
        (tmp_path / name).write_text("")
    monkeypatch.setenv("SELFHEAL_DATABASE_URL", "postgresql://parsed-only/db")
    command, *rest = [a.replace("/etc/selfheal/webhook", str(tmp_path)) for a in args]
    context = main.get_command(click.Context(main), command).make_context(command, rest)
    assert tuple(context.params["namespaces"]) == ("team-a", "team-b")


def test_release_namespace_is_followed_everywhere(helm):
    objects = template(helm, namespace="payments-selfheal")
    assert "selfheal-system" not in yaml.safe_dump_all(objects)
    webhook = find(objects, "ValidatingWebhookConfiguration", "selfheal-patch-code")
    assert (
        webhook["metadata"]["annotations"]["cert-manager.io/inject-ca-from"]
        == "payments-selfheal/selfheal-operator-webhook"
    )
    assert find(objects, "Certificate", "selfheal-operator-webhook")["spec"]["dnsNames"] == [
        "selfheal-operator-webhook.payments-selfheal.svc"
    ]


@pytest.mark.parametrize(
    "value, named",
    [
        ("operator.replicas=-1", "operator/replicas"),
        ("api.replicas=three", "api/replicas"),
        ("webhook.enabled=maybe", "webhook/enabled"),
        ("image.pullPolicy=Sometimes", "image/pullPolicy"),
        ("watchNamespaces[0]=Team_A", "watchNamespaces/0"),
        ("replicas=3", "replicas"),  # not a value of this chart: api.replicas or operator.replicas
    ],
)
def test_bad_values_are_refused_naming_the_value(helm, value, named):
    result = run_helm(helm, "template", "selfheal", str(CHART), "--set", value, check=False)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr, result.stderr
    assert named in result.stderr, result.stderr


def test_the_api_server_accepts_a_non_default_render(devenv, helm, third_party_crds, selfheal_namespace):
    objects = template(
        helm,
        "--set",
        "webhook.enabled=false",
        "--set",
        "api.replicas=2",
        "--set-json",
        'watchNamespaces=["team-a"]',
        "--set-json",
        'monitoring.labels={"release": "x"}',
    )
    result = kubectl(devenv, "apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump_all(objects))
    accepted = [line for line in result.stdout.splitlines() if line.endswith("(server dry run)")]
    assert len(accepted) == len(objects), result.stdout
    assert "PodSecurity" not in result.stderr, result.stderr
