"""kustomize only loads files under its root: the CRD and the samples are copied into manifests/;
a Helm chart only holds its own files: the CRD, the alert rules and the dashboard are copied into
charts/selfheal/. The copies must never drift from the originals."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_crd_copy_is_identical():
    original, copy = ROOT / "crds/selfhealpatches.yaml", ROOT / "manifests/base/crd/selfhealpatches.yaml"
    assert copy.read_bytes() == original.read_bytes(), "run: cp crds/selfhealpatches.yaml manifests/base/crd/"


def test_sample_copies_are_identical_and_complete():
    originals = {p.name: p.read_bytes() for p in (ROOT / "samples").glob("*.yaml")}
    copies = {
        p.name: p.read_bytes() for p in (ROOT / "manifests/samples").glob("*.yaml") if p.name != "kustomization.yaml"
    }
    assert copies == originals, "run: cp samples/*.yaml manifests/samples/ (and list new ones in its kustomization)"
    listed = (ROOT / "manifests/samples/kustomization.yaml").read_text()
    assert all(f"- {name}" in listed for name in originals)


@pytest.mark.parametrize(
    "original, copy",
    [
        ("crds/selfhealpatches.yaml", "charts/selfheal/crds/selfhealpatches.yaml"),
        ("manifests/components/monitoring/prometheusrule.yaml", "charts/selfheal/files/prometheusrule.yaml"),
        ("manifests/components/monitoring/dashboards/selfheal.json", "charts/selfheal/files/dashboards/selfheal.json"),
    ],
)
def test_chart_copies_are_identical(original, copy):
    assert (ROOT / copy).read_bytes() == (ROOT / original).read_bytes(), f"run: cp {original} {copy}"
