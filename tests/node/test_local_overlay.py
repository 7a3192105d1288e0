"""The `local` overlay installed on a real node: every pod Ready with its probes passing, the
migration Job complete, Services routed by kube-proxy, and invalid patch code refused at
`kubectl apply` by the operator's webhook, which the API server reaches through its Service.

The install is tests/node/overlay: the `local` overlay plus the webhook component, with the
Secrets a user creates by hand (docs/deploy.md) made here. Pods reach the test world's
PostgreSQL and API server, which listen on 127.0.0.1, through the node's relays on the bridge's
gateway address (hack/node/node.py).
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psycopg
import pytest
import yaml

from hack.node import node as node_tool
from selfheal.core import tls
from tests.db_roles import restricted_database
from tests.support import wait_until

pytestmark = [pytest.mark.node, pytest.mark.timeout(1800)]

OVERLAY = Path(__file__).parent / "overlay"
NAMESPACE = "selfheal-system"
WEBHOOK_SERVICE = f"selfheal-operator-webhook.{NAMESPACE}.svc"
DEPLOYMENTS = ("selfheal-operator", "devportal-api")


def kubectl(devenv, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(devenv.kubectl), "--kubeconfig", str(devenv.kubeconfig), *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=180,
    )
    if check:
        assert result.returncode == 0, f"kubectl {' '.join(args)}:\n{result.stderr}"
    return result


def get_json(devenv, *args: str) -> dict:
    return json.loads(kubectl(devenv, "get", "-o", "json", *args).stdout)


def on_pod_network(url: str) -> str:
    """The same database as seen from a pod: the node relays PostgreSQL's port on its gateway."""
    return url.replace("@127.0.0.1:", f"@{node_tool.GATEWAY}:")


def create_secrets(devenv, admin_url: str, tmp_path: Path) -> tuple[str, bytes]:
    """The Secrets docs/deploy.md has a user create, the webhook's serving certificate (cert-manager's
    job elsewhere), and the registry's URL for the test to read; returns (operator's URL, CA)."""
    roles = restricted_database(admin_url)
    signing_key = tmp_path / "signing.pem"
    subprocess.run(
        [str(Path(sys.executable).parent / "selfheal"), "keygen", "--out", str(signing_key)],
        check=True,
        capture_output=True,
    )
    pems = tls.ca_and_serving_certificate(
        ca_name="selfheal-webhook-test-ca", common_name=WEBHOOK_SERVICE, hosts=[WEBHOOK_SERVICE]
    )
    for name, files in {
        "selfheal-migrate-db": {"url": on_pod_network(roles.owner_url)},
        "selfheal-operator-db": {"url": on_pod_network(roles.operator_url)},
        "devportal-api-db": {"url": on_pod_network(roles.api_url)},
        "devportal-signing-key": {"signing.pem": signing_key.read_text()},
        "selfheal-operator-webhook-tls": {
            "tls.crt": pems.cert.decode(),
            "tls.key": pems.key.decode(),
            "ca.crt": pems.ca_cert.decode(),
        },
    }.items():
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "stringData": files,
        }
        kubectl(devenv, "apply", "-f", "-", input=json.dumps(secret))
    return roles.operator_url, pems.ca_cert


def pod_log(node, pod: dict) -> str:
    """A container's log, read from the node (the API server cannot resolve the node's name)."""
    logs = node.state_dir / "pod-logs"
    meta = pod["metadata"]
    found = sorted(logs.glob(f"{meta['namespace']}_{meta['name']}_*/*/*.log"))
    return "\n".join(f"--- {path.relative_to(logs)}\n{path.read_text()[-3000:]}" for path in found)


def pods_ready(devenv, node) -> list[dict] | None:
    pods = get_json(devenv, "pods", "-n", NAMESPACE)["items"]
    for pod in pods:
        for status in pod["status"].get("containerStatuses", []):
            waiting = status.get("state", {}).get("waiting", {})
            if waiting.get("reason") in ("CrashLoopBackOff", "ErrImageNeverPull", "CreateContainerConfigError"):
                pytest.fail(f"pod {pod['metadata']['name']}: {waiting}\n{pod_log(node, pod)}")
    serving = [p for p in pods if "job-name" not in p["metadata"]["labels"]]
    names = {p["metadata"]["labels"]["app.kubernetes.io/name"] for p in serving}
    ready = all(
        any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", [])) for p in serving
    )
    return pods if ready and names == set(DEPLOYMENTS) else None


def probe_counts(node) -> dict[tuple[str, str, str], float]:
    """prober_probe_total from the kubelet: (container, probe type, result) -> count."""
    counts: dict[tuple[str, str, str], float] = {}
    for line in node_tool.kubelet_get(node, "/metrics/probes").splitlines():
        if line.startswith("prober_probe_total{") and f'namespace="{NAMESPACE}"' in line:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
            key = (labels["container"], labels["probe_type"], labels["result"])
            counts[key] = counts.get(key, 0) + float(line.rsplit(" ", 1)[1])
    return counts


def patch(name: str, code: str) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "selfheal.molam.io/v1alpha1",
            "kind": "SelfHealPatch",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {
                "sdkLanguage": "python",
                "errorSignature": f"{name} failure",
                "patchCode": code,
                "severity": "low",
                "description": "node test",
            },
        }
    )


def test_local_overlay_runs_on_a_real_node(devenv, node, selfheal_image, admin_database_url, tmp_path):
    objects = [d for d in yaml.safe_load_all(kubectl(devenv, "kustomize", str(OVERLAY)).stdout) if d]
    [webhook] = [o for o in objects if o["kind"] == "ValidatingWebhookConfiguration"]
    rest = [o for o in objects if o is not webhook]
    before = {line for line in kubectl(devenv, "get", "namespace", "-o", "name").stdout.split()}
    created_namespace = f"namespace/{NAMESPACE}" not in before
    started = time.monotonic()
    try:
        [namespace] = [o for o in objects if o["kind"] == "Namespace"]
        kubectl(devenv, "apply", "-f", "-", input=json.dumps(namespace))
        operator_url, webhook_ca = create_secrets(devenv, admin_database_url, tmp_path)
        # The webhook last: it fails closed, so it is configured once the operator serves it.
        applied = kubectl(devenv, "apply", "-f", "-", input=yaml.safe_dump_all(rest))
        assert "PodSecurity" not in applied.stderr, applied.stderr  # every pod meets `restricted`

        pods = wait_until(lambda: pods_ready(devenv, node), timeout=240, what="every Deployment's pod Ready")
        ready_after = time.monotonic() - started
        kubectl(devenv, "wait", "-n", NAMESPACE, "--for=condition=Complete", "job/selfheal-migrate", "--timeout=120s")
        for pod in pods:
            assert pod["spec"]["nodeName"] == node_tool.NODE_NAME
            assert pod["status"]["podIP"].startswith("10.244.0.")  # on the pod network, not the host's
            for status in pod["status"].get("containerStatuses", []):
                assert status["restartCount"] == 0, f"{pod['metadata']['name']} restarted\n{pod_log(node, pod)}"
        print(f"\nevery pod Ready {ready_after:.1f}s after the apply")

        # Probes: the kubelet counts each probe it ran. Readiness and startup probes may fail while a
        # process starts (that is what they are for); a liveness failure would restart the container.
        counts = wait_until(
            lambda: (c := probe_counts(node)).get(("api", "Readiness", "successful")) and c,
            timeout=30,
            what="a successful readiness probe of the registry API",
        )
        assert counts.get(("operator", "Startup", "successful")), counts
        assert not [key for key in counts if key[1] == "Liveness" and key[2] != "successful"], counts

        # The operator in its pod migrated nothing (the Job did) and synced the samples into the registry.
        samples = [o["metadata"]["name"] for o in objects if o["kind"] == "SelfHealPatch"]

        def synced() -> bool:
            with psycopg.connect(operator_url) as conn:
                rows = conn.execute("SELECT source_name FROM sdk_self_healing_registry").fetchall()
            return {row[0] for row in rows} >= set(samples)

        wait_until(synced, timeout=60, what="the samples synced into the registry by the operator's pod")

        # ClusterIP Services route through kube-proxy: the registry API answers at its Service's address.
        ip = get_json(devenv, "service", "devportal", "-n", NAMESPACE)["spec"]["clusterIP"]
        with urllib.request.urlopen(f"http://{ip}:8140/readyz", timeout=10) as response:
            assert response.status == 200

        # The webhook, configured with its CA, answers through its Service (the API server dials the
        # Service's cluster IP, which kube-proxy sends to the operator's pod).
        for entry in webhook["webhooks"]:
            entry["clientConfig"]["caBundle"] = base64.b64encode(webhook_ca).decode()
        kubectl(devenv, "apply", "-f", "-", input=json.dumps(webhook))
        [endpoints] = get_json(
            devenv, "endpointslices", "-n", NAMESPACE, "-l", "kubernetes.io/service-name=selfheal-operator-webhook"
        )["items"]
        operator_ips = {
            p["status"]["podIP"]
            for p in pods
            if p["metadata"]["labels"]["app.kubernetes.io/name"] == "selfheal-operator"
        }
        assert {a for e in endpoints["endpoints"] for a in e["addresses"]} == operator_ips

        refused = kubectl(devenv, "apply", "-f", "-", input=patch("node-test-invalid", "import os"), check=False)
        assert refused.returncode != 0
        assert 'admission webhook "patch-code.selfheal.molam.io" denied the request' in refused.stderr, refused.stderr
        assert "1:1: imports are not allowed" in refused.stderr, refused.stderr  # the compiler's own message
        accepted = kubectl(
            devenv, "apply", "-f", "-", input=patch("node-test-valid", 'self.base_url = "https://api-backup.molam.com"')
        )
        assert "created" in accepted.stdout
    finally:
        cleanup(devenv, webhook, rest, before_namespaces=before, created_namespace=created_namespace)


def cleanup(devenv, webhook: dict, rest: list[dict], *, before_namespaces: set[str], created_namespace: bool) -> None:
    """The webhook first (fail-closed, it would refuse every later SelfHealPatch write of the session),
    then what the apply created; the namespace only if it did not exist before."""
    kubectl(
        devenv,
        "delete",
        "validatingwebhookconfiguration",
        webhook["metadata"]["name"],
        "--ignore-not-found",
        check=False,
    )
    kubectl(
        devenv,
        "delete",
        "-n",
        NAMESPACE,
        "selfhealpatches",
        "node-test-valid",
        "node-test-invalid",
        "--ignore-not-found",
        check=False,
    )
    # Patches while the operator still runs: it holds their finalizer.
    keep = {"CustomResourceDefinition", "Namespace"}  # the session's CRD; the namespace below
    patches = [o for o in rest if o["kind"] == "SelfHealPatch"]
    doomed = [o for o in rest if o["kind"] not in keep and o not in patches]
    for batch in (patches, doomed):
        kubectl(
            devenv,
            "delete",
            "--ignore-not-found",
            "--wait=true",
            "--timeout=120s",
            "-f",
            "-",
            input=yaml.safe_dump_all(batch),
            check=False,
        )
    kubectl(
        devenv,
        "delete",
        "secrets",
        "-n",
        NAMESPACE,
        "--ignore-not-found",
        "selfheal-migrate-db",
        "selfheal-operator-db",
        "devportal-api-db",
        "devportal-signing-key",
        "selfheal-operator-webhook-tls",
        check=False,
    )
    wait_until(
        lambda: not get_json(devenv, "pods", "-n", NAMESPACE)["items"],
        timeout=120,
        what="the overlay's pods to be gone",
    )
    if created_namespace:
        kubectl(devenv, "delete", "namespace", NAMESPACE, "--wait=true", "--timeout=120s")
