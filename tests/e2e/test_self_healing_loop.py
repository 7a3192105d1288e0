"""The whole loop with every real part: kubectl → API server → operator → PostgreSQL → registry API →
Python SDK → local payments server, and back through reports to the guard."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from molam import ApiError, MolamClient
from selfheal.core.signing import key_id
from tests.sdk.payments_server import PaymentsServer
from tests.support import RegistryProxy, wait_until

ROOT = Path(__file__).resolve().parents[2]


def kubectl(devenv, *args: str) -> str:
    result = subprocess.run(
        [str(devenv.bin_dir / "kubectl"), "--kubeconfig", str(devenv.kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def apply_sample(devenv, namespace: str, name: str) -> None:
    """A sample patch applied and Ready: each test applies what it uses (idempotent), none relies on another's."""
    kubectl(devenv, "apply", "-n", namespace, "-f", str(ROOT / f"samples/{name}.yaml"))
    kubectl(devenv, "wait", "-n", namespace, "--for=condition=Ready", f"shp/{name}", "--timeout=60s")


def trusted_keys(registry_api) -> dict[str, str]:
    public_key = serialization.load_pem_public_key(registry_api.public_key_pem.encode())
    return {key_id(public_key): registry_api.public_key_pem}


def client_for(
    payments: PaymentsServer,
    *,
    selfheal_url: str,
    token: str,
    trusted: dict,
    applied: list,
    fallback: str = "pk_fallback",
) -> MolamClient:
    return MolamClient(
        api_key="pk_primary",
        secret_key=payments.behaviour.secret_key,
        base_url=payments.url,
        timeout=2.0,
        selfheal_url=selfheal_url,
        selfheal_token=token,
        trusted_keys=trusted,
        fallback_credentials={"MOLAM_FALLBACK_API_KEY": fallback},
        on_patch_applied=applied.append,
        report_interval=0.05,
    )


def test_patch_applied_with_kubectl_heals_a_failing_call(devenv, registry_api, loop_namespace, patches_in):
    apply_sample(devenv, loop_namespace, "python-401-fallback-key")
    token = registry_api.token("dev-e2e")
    applied: list = []
    with PaymentsServer() as payments:
        payments.behaviour.revoked_keys = {"pk_primary"}
        with client_for(
            payments, selfheal_url=registry_api.url, token=token, trusted=trusted_keys(registry_api), applied=applied
        ) as client:
            payment = wait_until(
                lambda: _try(client.create_payment, amount=5000, currency="XOF", country="SN"), what="a healed payment"
            )
            assert payment["status"] == "succeeded"
            client.flush_reports()
    [patch] = applied
    row = patches_in(loop_namespace, "python-401-fallback-key")
    assert (patch.id, patch.version, patch.success) == (row["id"], row["version"], True)

    def reported():
        with __import__("psycopg").connect(registry_api.database_url) as conn:
            return conn.execute(
                "SELECT developer_id, success, patch_applied FROM sdk_patch_applications WHERE patch_id = %s",
                (row["id"],),
            ).fetchall()

    assert ("dev-e2e", True, True) in wait_until(reported, what="the outcome reported")


def test_tampered_envelope_is_refused(devenv, registry_api, loop_namespace, patches_in):
    apply_sample(devenv, loop_namespace, "python-401-fallback-key")
    token = registry_api.token("dev-tamper")
    applied: list = []
    with TamperingProxy(registry_api.url) as proxy, PaymentsServer() as payments:
        payments.behaviour.revoked_keys = {"pk_primary"}
        with client_for(
            payments, selfheal_url=proxy.url, token=token, trusted=trusted_keys(registry_api), applied=applied
        ) as client:
            with pytest.raises(ApiError) as caught:
                client.create_payment(amount=5000, currency="XOF", country="SN")
    assert caught.value.status == 401 and applied == []
    assert proxy.tampered >= 1


def test_reported_failures_switch_a_bad_patch_off_and_the_sdk_stops_receiving_it(
    devenv, registry_api, loop_namespace, patches_in, custom_api
):
    """The fallback key named by the patch is revoked too: every healed call fails and rolls back.

    The patch matches the error's code (`api_key_revoked`), which outranks any `401` patch other
    tests left in the shared registry; once it is off, other patches may still answer, but never it.
    """
    name = "e2e-guarded-fallback-key"
    sample = (ROOT / "samples/python-401-fallback-key.yaml").read_text()
    manifest = sample.replace("name: python-401-fallback-key", f"name: {name}").replace(
        'errorSignature: "401"', "errorSignature: api_key_revoked"
    )
    assert manifest != sample and "api_key_revoked" in manifest
    subprocess.run(
        [
            str(devenv.bin_dir / "kubectl"),
            "--kubeconfig",
            str(devenv.kubeconfig),
            "apply",
            "-n",
            loop_namespace,
            "-f",
            "-",
        ],
        input=manifest,
        text=True,
        check=True,
        capture_output=True,
    )
    kubectl(devenv, "wait", "-n", loop_namespace, "--for=condition=Ready", f"shp/{name}", "--timeout=60s")
    ours = patches_in(loop_namespace, name)["id"]
    token, probe = registry_api.token("dev-guard"), registry_api.token("dev-guard-probe")
    applied: list = []
    with PaymentsServer() as payments:
        payments.behaviour.revoked_keys = {"pk_primary", "pk_fallback"}
        with client_for(
            payments, selfheal_url=registry_api.url, token=token, trusted=trusted_keys(registry_api), applied=applied
        ) as client:
            for _ in range(40):
                with pytest.raises(ApiError):
                    client.create_payment(amount=5000, currency="XOF", country="SN")
            client.flush_reports()
            assert [patch.id for patch in applied if patch.id == ours]
            assert all(patch.rollback_triggered for patch in applied)

            def switched_off():
                status = custom_api.get_namespaced_custom_object(
                    "selfheal.molam.io", "v1alpha1", loop_namespace, "selfhealpatches", name
                ).get("status", {})
                active = next((c for c in status.get("conditions", []) if c["type"] == "Active"), {})
                return active.get("reason") == "AutoDeactivated" and active

            condition = wait_until(switched_off, timeout=60, what="the guard's deactivation")
            assert "rollback" in condition["message"].lower() or "fail" in condition["message"].lower()

            def served_patch() -> str | None:
                status, _, answer = registry_api.request(
                    "POST",
                    "/api/dev/self-heal",
                    token=probe,
                    body={
                        "sdk": "python",
                        "error": "401 Unauthorized: api_key_revoked",
                        "status": 401,
                        "code": "api_key_revoked",
                    },
                )
                assert status in (200, 404), (status, answer)
                return answer["patch"]["id"] if status == 200 else None

            wait_until(lambda: served_patch() != ours, timeout=5, what="the registry API stops serving it")
            served = len(applied)
            with pytest.raises(ApiError):
                client.create_payment(amount=5000, currency="XOF", country="SN")
            assert ours not in [patch.id for patch in applied[served:]]
    assert patches_in(loop_namespace, name)["active"] is False


def _try(call, **kwargs):
    try:
        return call(**kwargs)
    except ApiError:
        return None  # the registry API may not have loaded the patch yet


class TamperingProxy(RegistryProxy):
    """Forwards to the registry API and flips one byte of every envelope payload it passes on."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream)
        self.tampered = 0

    def answer(self, path, forward):
        status, answer = forward()
        if status == 200 and path == "/api/dev/self-heal":
            document = json.loads(answer)
            payload = bytearray(base64.b64decode(document["envelope"]["payload"]))
            payload[payload.index(b'"severity":"') + 12] ^= 0x01  # critical → britical
            document["envelope"]["payload"] = base64.b64encode(bytes(payload)).decode()
            answer = json.dumps(document).encode()
            self.tampered += 1
        return status, answer
