"""The Helm chart with a real helm, built from Go modules by hack/helm/build.sh (cached, like the
control plane's binaries)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "selfheal"
NAMESPACE = "selfheal-system"


@pytest.fixture(scope="session")
def helm() -> Path:
    result = subprocess.run([str(ROOT / "hack/helm/build.sh")], capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.strip())


def run_helm(helm: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([str(helm), *args], capture_output=True, text=True, timeout=120)
    if check:
        assert result.returncode == 0, f"helm {' '.join(args)}:\n{result.stderr}"
    return result


def template(helm: Path, *args: str, namespace: str = NAMESPACE) -> list[dict]:
    """`helm template` of the chart, CRDs included, as objects."""
    output = run_helm(
        helm, "template", "selfheal", str(CHART), "--namespace", namespace, "--include-crds", *args
    ).stdout
    return [document for document in yaml.safe_load_all(output) if document]


# The API server's world for the manifests, shared: third-party CRDs and the namespace.
from tests.manifests.conftest import selfheal_namespace, third_party_crds  # noqa: E402, F401
