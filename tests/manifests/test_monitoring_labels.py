"""Monitoring labels are settable the documented kustomize ways (docs/deploy.md, "Monitoring labels"):
the monitoring-release component, or the same patch in a user's overlay with another value. Each
lands on the ServiceMonitors and the PrometheusRule, nowhere else, and the API server accepts them."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from tests.manifests.conftest import MANIFESTS, build, kubectl

MONITORING_KINDS = {"ServiceMonitor", "PrometheusRule"}


def overlay(devenv, directory: Path, kustomization: dict) -> list[dict]:
    """A user's overlay in `directory` (kustomize wants paths relative to it), rendered."""
    directory.mkdir()

    def relative(path: Path) -> str:
        return os.path.relpath(path, directory)

    kustomization = {**kustomization, "resources": [relative(MANIFESTS / "overlays/production")]}
    kustomization["components"] = [relative(MANIFESTS / c) for c in kustomization.get("components", [])]
    (directory / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    output = kubectl(devenv, "kustomize", str(directory)).stdout
    return [document for document in yaml.safe_load_all(output) if document]


def assert_labelled_only_there(objects: list[dict], production: list[dict], labels: dict) -> None:
    def key(o):
        return o["kind"], o["metadata"]["name"]

    before = {key(o): o for o in production}
    assert {key(o) for o in objects} == before.keys()
    monitoring = [o for o in objects if o["kind"] in MONITORING_KINDS]
    assert len(monitoring) == 3
    for document in monitoring:
        assert labels.items() <= document["metadata"]["labels"].items(), key(document)
        document["metadata"]["labels"] = {k: v for k, v in document["metadata"]["labels"].items() if k not in labels}
        if not document["metadata"]["labels"]:
            del document["metadata"]["labels"]
    # With the labels taken off again, every object is the production overlay's, unchanged.
    assert {key(o): o for o in objects} == before


def test_the_release_component_labels_the_monitoring_objects(devenv, tmp_path):
    production = build(devenv, "production")
    assert not any("release" in (o["metadata"].get("labels") or {}) for o in production)
    objects = overlay(devenv, tmp_path / "kube-prometheus-stack", {"components": ["components/monitoring-release"]})
    assert_labelled_only_there(objects, production, {"release": "kube-prometheus-stack"})


def test_the_documented_patch_sets_any_labels(devenv, tmp_path):
    patch = yaml.safe_dump(
        {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "ServiceMonitor",
            "metadata": {"name": "any", "labels": {"release": "prometheus", "team": "payments"}},
        }
    )
    objects = overlay(
        devenv,
        tmp_path / "other-release",
        {"patches": [{"target": {"group": "monitoring.coreos.com"}, "patch": patch}]},
    )
    assert_labelled_only_there(objects, build(devenv, "production"), {"release": "prometheus", "team": "payments"})


def test_the_api_server_accepts_the_labelled_objects(devenv, third_party_crds, selfheal_namespace, tmp_path):
    objects = overlay(devenv, tmp_path / "applied", {"components": ["components/monitoring-release"]})
    monitoring = [o for o in objects if o["kind"] in MONITORING_KINDS]
    result = kubectl(devenv, "apply", "--dry-run=server", "-o", "yaml", "-f", "-", input=yaml.safe_dump_all(monitoring))
    accepted = [o for o in yaml.safe_load_all(result.stdout) if o]
    items = accepted[0]["items"] if accepted[0]["kind"] == "List" else accepted
    assert sorted((o["kind"], o["metadata"]["name"], o["metadata"]["labels"]["release"]) for o in items) == [
        ("PrometheusRule", "selfheal", "kube-prometheus-stack"),
        ("ServiceMonitor", "devportal-api", "kube-prometheus-stack"),
        ("ServiceMonitor", "selfheal-operator", "kube-prometheus-stack"),
    ]
