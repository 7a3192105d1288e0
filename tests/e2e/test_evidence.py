"""One developer's reports switch a patch off for that developer only, with every real part:
kubectl → operator → PostgreSQL → registry API ← outcome reports with receipts → guard → status,
event and audit → registry API no longer serving that developer, still serving the others.

Reports go over plain HTTP here, as an attacker with a developer token would send them; the SDKs'
own receipts are proven by the loop tests (their reports through this API count).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import kubernetes
import psycopg

from tests.support import wait_until

ROOT = Path(__file__).resolve().parents[2]
REPORTS = "/api/dev/self-heal/reports"


def test_one_token_flooding_failures_switches_the_patch_off_for_itself_only(
    devenv, registry_api, loop_namespace, patches_in, custom_api, kube_client, operator_database_url
):
    name, code = "e2e-evidence", f"evidence_{uuid.uuid4().hex[:8]}"
    sample = (ROOT / "samples/python-401-fallback-key.yaml").read_text()
    manifest = sample.replace("name: python-401-fallback-key", f"name: {name}").replace(
        'errorSignature: "401"', f"errorSignature: {code}"
    )
    assert code in manifest
    kubectl = [str(devenv.bin_dir / "kubectl"), "--kubeconfig", str(devenv.kubeconfig), "-n", loop_namespace]
    subprocess.run([*kubectl, "apply", "-f", "-"], input=manifest, text=True, check=True, capture_output=True)
    subprocess.run([*kubectl, "wait", "--for=condition=Ready", f"shp/{name}", "--timeout=60s"], check=True)
    patch_id = patches_in(loop_namespace, name)["id"]
    suffix = uuid.uuid4().hex[:6]
    shops = [f"shop-a-{suffix}", f"shop-b-{suffix}"]
    attacker = f"attacker-{suffix}"
    tokens = {developer: registry_api.token(developer) for developer in [*shops, attacker]}

    def lookup(developer: str) -> tuple[int, dict]:
        status, _, answer = registry_api.request(
            "POST",
            "/api/dev/self-heal",
            token=tokens[developer],
            body={"sdk": "python", "error": f"402 {code}", "status": 402, "code": code},
        )
        return status, answer

    def send(developer: str, receipt: str, *, count: int, rolled_back: int) -> None:
        reports = [
            {
                "patch_id": patch_id,
                "sdk": "python",
                "error": f"402 {code} req_{index}",
                "success": index >= rolled_back,
                "rollback_triggered": index < rolled_back,
                "receipt": receipt,
            }
            for index in range(count)
        ]
        status, _, body = registry_api.request("POST", REPORTS, token=tokens[developer], body={"reports": reports})
        assert (status, body["accepted"]) == (202, count), body

    receipts = {
        developer: wait_until(lambda d=developer: lookup(d), what="served")[1]["receipt"] for developer in tokens
    }
    for shop in shops:  # two shops use the patch healthily
        send(shop, receipts[shop], count=60, rolled_back=1)
    send(attacker, receipts[attacker], count=300, rolled_back=300)

    def status() -> dict:
        return custom_api.get_namespaced_custom_object(
            "selfheal.molam.io", "v1alpha1", loop_namespace, "selfhealpatches", name
        ).get("status", {})

    wait_until(lambda: status().get("guard", {}).get("switchedOffFor") == [attacker], timeout=60, what="status")
    assert patches_in(loop_namespace, name)["active"] is True
    active = next(c for c in status()["conditions"] if c["type"] == "Active")
    assert active["status"] == "True"
    assert wait_until(lambda: lookup(attacker)[0] == 404, timeout=10, what="no longer served to the attacker")
    assert "switched off for this token" in lookup(attacker)[1]["message"]
    assert all(lookup(shop)[0] == 200 for shop in shops)
    events = kubernetes.client.CoreV1Api(kube_client).list_namespaced_event(loop_namespace).items
    [event] = [e for e in events if e.involved_object.name == name and e.reason == "SwitchedOffForDevelopers"]
    assert attacker in event.message and event.type == "Warning"
    with psycopg.connect(operator_database_url) as conn:
        [(details,)] = conn.execute(
            "SELECT details FROM sdk_patch_audit WHERE patch_id = %s AND action = 'guard-developer'", (patch_id,)
        ).fetchall()
    assert (details["developer"], details["scope"]) == (attacker, "developers")

    # `selfheal enable` serves it to everyone again.
    env = {**os.environ, "KUBECONFIG": str(devenv.kubeconfig), "SELFHEAL_DATABASE_URL": operator_database_url}
    subprocess.run(
        [sys.executable, "-m", "selfheal", "enable", name, "-n", loop_namespace],
        env=env,
        check=True,
        capture_output=True,
    )
    wait_until(lambda: lookup(attacker)[0] == 200, timeout=10, what="served to the attacker again")
    wait_until(lambda: "switchedOffFor" not in status().get("guard", {}), timeout=60, what="status cleared")
