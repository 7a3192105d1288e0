"""The end-to-end loop once more with the Node SDK: kubectl → API server → operator → PostgreSQL →
registry API → @molam/sdk (a real `node` process) → local payments server, and back through
reports. The fixtures are the Python loop's (tests/e2e/conftest.py), in a namespace of its own."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from tests.e2e.test_self_healing_loop import TamperingProxy, apply_sample, trusted_keys
from tests.sdk.payments_server import PaymentsServer
from tests.support import wait_until

SCRIPT = Path(__file__).with_name("node_sdk_loop.js")
SAMPLE = "node-401-fallback-key"


def run_node(
    payments: PaymentsServer, *, selfheal_url: str, token: str, trusted: dict, attempts: int = 1
) -> tuple[dict, str]:
    node = shutil.which("node")
    assert node, "the Node SDK's loop needs `node` (Node.js 18+) on PATH"
    env = {
        **os.environ,
        "PAYMENTS_URL": payments.url,
        "PAYMENTS_SECRET_KEY": payments.behaviour.secret_key,
        "MOLAM_SELFHEAL_URL": selfheal_url,
        "MOLAM_SELFHEAL_TOKEN": token,
        "TRUSTED_KEYS": json.dumps(trusted),
        "ATTEMPTS": str(attempts),
    }
    result = subprocess.run([node, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1]), result.stderr


def test_patch_applied_with_kubectl_heals_a_failing_call_from_node(devenv, registry_api, loop_namespace, patches_in):
    apply_sample(devenv, loop_namespace, SAMPLE)
    row = patches_in(loop_namespace, SAMPLE)
    with PaymentsServer() as payments:
        payments.behaviour.revoked_keys = {"pk_primary"}
        outcome, log = run_node(
            payments,
            selfheal_url=registry_api.url,
            token=registry_api.token("dev-e2e-node"),
            trusted=trusted_keys(registry_api),
            attempts=100,
        )
        assert outcome["payment"] and outcome["payment"]["status"] == "succeeded", (outcome, log)
        assert payments.requests[-1]["headers"]["authorization"] == "Bearer pk_fallback"
    [patch] = outcome["applied"]
    assert (patch["id"], patch["version"], patch["description"], patch["success"], patch["rollbackTriggered"]) == (
        row["id"],
        row["version"],
        "Injection clé API fallback sur 401",
        True,
        False,
    )
    assert outcome["history"] == outcome["applied"] and outcome["credential"] == "MOLAM_FALLBACK_API_KEY"
    assert "⚡ Molam SDK applied self-healing patch" in log and "⚡ 401: using fallback API key" in log
    assert outcome["reported"] is True

    def reported():
        with __import__("psycopg").connect(registry_api.database_url) as conn:
            return conn.execute(
                "SELECT developer_id, sdk_language, success, patch_applied FROM sdk_patch_applications"
                " WHERE patch_id = %s",
                (row["id"],),
            ).fetchall()

    assert ("dev-e2e-node", "node", True, True) in wait_until(reported, what="the Node outcome reported")


def test_tampered_envelope_is_refused_by_node(devenv, registry_api, loop_namespace):
    apply_sample(devenv, loop_namespace, SAMPLE)
    with TamperingProxy(registry_api.url) as proxy, PaymentsServer() as payments:
        payments.behaviour.revoked_keys = {"pk_primary"}
        outcome, log = run_node(
            payments,
            selfheal_url=proxy.url,
            token=registry_api.token("dev-tamper-node"),
            trusted=trusted_keys(registry_api),
        )
    assert outcome["payment"] is None and outcome["applied"] == []
    assert (outcome["error"]["status"], outcome["error"]["code"]) == (401, "api_key_revoked")
    assert outcome["credential"] is None
    assert proxy.tampered >= 1
    assert "refused a self-healing envelope: no valid signature from a trusted key" in log
