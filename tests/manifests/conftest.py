"""Manifests against the real API server: kustomize builds, kubectl with the built binary."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support import wait_until

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
OVERLAYS = ("production", "local")
NAMESPACE = "selfheal-system"


def kubectl(
    devenv, *args: str, kubeconfig: Path | None = None, input: str | None = None, check: bool = True
) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(devenv.kubectl), "--kubeconfig", str(kubeconfig or devenv.kubeconfig), *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check:
        assert result.returncode == 0, f"kubectl {' '.join(args)}:\n{result.stderr}"
    return result


def build(devenv, overlay: str) -> list[dict]:
    output = kubectl(devenv, "kustomize", str(MANIFESTS / "overlays" / overlay)).stdout
    return [document for document in yaml.safe_load_all(output) if document]


def find(objects: list[dict], kind: str, name: str) -> dict:
    [found] = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


@pytest.fixture(scope="session")
def third_party_crds(devenv) -> None:
    """ServiceMonitor, PrometheusRule, Issuer, Certificate: enough for the production overlay."""
    kubectl(devenv, "apply", "-f", str(Path(__file__).parent / "third_party_crds.yaml"))
    kubectl(
        devenv,
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/servicemonitors.monitoring.coreos.com",
        "crd/prometheusrules.monitoring.coreos.com",
        "crd/issuers.cert-manager.io",
        "crd/certificates.cert-manager.io",
    )
    # Right after a CRD is established the API may still answer 429 for a moment.
    wait_until(
        lambda: (
            kubectl(devenv, "get", "servicemonitors,prometheusrules,issuers,certificates", "-A", check=False).returncode
            == 0
        ),
        what="third-party resources to list",
    )


@pytest.fixture(scope="session")
def selfheal_namespace(devenv) -> str:
    """The overlays' namespace, created for real: a server-side dry run cannot create it for the
    objects that follow in the same apply."""
    [namespace] = [o for o in build(devenv, "local") if o["kind"] == "Namespace"]
    kubectl(devenv, "apply", "-f", "-", input=yaml.safe_dump(namespace))
    return NAMESPACE
