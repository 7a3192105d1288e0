"""A switched-off or expired patch is never applied (issue 14, point 4), with every real part:
kubectl → operator → PostgreSQL → registry API → each SDK, through a proxy that can block the
registry (429, 503) as anyone on the network path could. The SDKs' clocks are injected, so ten
days pass without sleeping.

- While the registry is blocked, the last verified patch stands in only until its envelope's
  `expires_at` (the API's 300 s by default): ten days later it is not applied.
- The kill switch (`DELETE /api/dev/patches/{id}`) reaches the SDK at its next successful
  contact: the registry's "no patch" drops the cached patch, and blocking the registry afterwards
  does not bring it back.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from molam import ApiError, MolamClient
from tests.e2e.test_self_healing_loop import kubectl, trusted_keys
from tests.sdk.payments_server import PaymentsServer
from tests.support import RegistryProxy, wait_until

DRIVER = Path(__file__).with_name("node_sdk_driver.js")
# The whole error text: an `exact` signature outranks any patch other tests leave in the registry.
SIGNATURE = "400 Bad Request: invalid_currency"
DAY_MS = 86400 * 1000
CODE = {
    "python": ('self.default_currency = "XOF"', "self.default_currency = None"),
    "node": ('this.defaultCurrency = "XOF";', "this.defaultCurrency = null;"),
}


class BlockingProxy(RegistryProxy):
    """Forwards to the registry API, or answers `block` (429, 503) itself when set."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream)
        self.block, self.blocked = None, 0

    def answer(self, path, forward):
        if self.block is None:
            return forward()
        # Lookups only: outcome reports (another patch may have answered) are blocked too, uncounted.
        self.blocked += path == "/api/dev/self-heal"
        return self.block, b'{"error": "blocked", "message": "blocked by the test"}'


def apply_patch(devenv, namespace: str, name: str, language: str, description: str, **spec) -> None:
    """A SelfHealPatch for SIGNATURE in `language` (XOF for an invalid currency), applied with kubectl."""
    patch, rollback = CODE[language]
    manifest = {
        "apiVersion": "selfheal.molam.io/v1alpha1",
        "kind": "SelfHealPatch",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "sdkLanguage": language,
            "errorSignature": SIGNATURE,
            "patchCode": patch,
            "rollbackCode": rollback,
            "description": description,
            **spec,
        },
    }
    kubectl_apply = [str(devenv.bin_dir / "kubectl"), "--kubeconfig", str(devenv.kubeconfig), "apply", "-f", "-"]
    subprocess.run(kubectl_apply, input=json.dumps(manifest), text=True, check=True, capture_output=True)


def served_patch(devenv, registry_api, namespace: str, patches_in, language: str) -> str:
    """A patch for SIGNATURE in `language`, Ready; its registry id."""
    name = f"e2e-{language}-switched-off"
    apply_patch(devenv, namespace, name, language, "XOF for an invalid currency (issue 14, point 4)")
    kubectl(devenv, "wait", "-n", namespace, "--for=condition=Ready", f"shp/{name}", "--timeout=60s")
    return patches_in(namespace, name)["id"]


def kill(registry_api, patch_id: str, language: str) -> None:
    """The kill switch, then wait until the registry API no longer serves the patch."""
    status, _, answer = registry_api.request(
        "DELETE", f"/api/dev/patches/{patch_id}", token=registry_api.token(f"e2e-admin-{language}", role="dev_admin")
    )
    assert status == 200 and answer["active"] is False, answer
    probe = registry_api.token(f"e2e-probe-{language}")

    def served() -> str | None:
        body = {"sdk": language, "error": SIGNATURE, "status": 400, "code": "invalid_currency"}
        status, _, answer = registry_api.request("POST", "/api/dev/self-heal", token=probe, body=body)
        assert status in (200, 404), (status, answer)
        return answer["patch"]["id"] if status == 200 else None

    wait_until(lambda: served() != patch_id, timeout=5, what="the registry API stops serving it")


def test_python_sdk_never_applies_a_switched_off_or_expired_patch(devenv, registry_api, loop_namespace, patches_in):
    ours = served_patch(devenv, registry_api, loop_namespace, patches_in, "python")
    applied: list = []
    later = [0.0]
    with PaymentsServer() as payments, BlockingProxy(registry_api.url) as proxy:
        payments.behaviour.clock_tolerance = 11 * 86400  # the client's clock runs ahead; HMAC must still pass
        client = MolamClient(
            api_key="pk_primary",
            secret_key=payments.behaviour.secret_key,
            base_url=payments.url,
            timeout=2.0,
            selfheal_url=proxy.url,
            selfheal_token=registry_api.token("e2e-python-switched-off"),
            trusted_keys=trusted_keys(registry_api),
            on_patch_applied=applied.append,
            report_interval=0.05,
            clock=lambda: time.time() + later[0],
        )

        def pay():
            return client.create_payment(amount=100, currency="XYZ", country="SN")

        def ours_applied() -> int:
            return sum(1 for patch in applied if patch.id == ours)

        with client:
            wait_until(lambda: _healed(pay), what="a call healed by the served patch")
            assert ours_applied() == 1
            # Blocked (429): the last verified patch stands in while its envelope lasts...
            proxy.block, later[0] = 429, 240
            assert pay()["currency"] == "XOF" and ours_applied() == 2
            # ...and not ten days later.
            later[0] = 10 * 86400
            with pytest.raises(ApiError) as raised:
                pay()
            assert raised.value.code == "invalid_currency" and ours_applied() == 2
            # Served again, then switched off: the next successful contact ends it for good.
            proxy.block, later[0] = None, 0
            assert pay()["currency"] == "XOF" and ours_applied() == 3
            kill(registry_api, ours, "python")
            blocked_before = proxy.blocked
            _call_without(pay, ours, applied)  # the registry's answer: no patch for it any more
            proxy.block = 503
            _call_without(pay, ours, applied)  # blocked afterwards: it does not come back
            assert proxy.blocked == blocked_before + 1 and ours_applied() == 3


def test_node_sdk_never_applies_a_switched_off_or_expired_patch(
    devenv, registry_api, loop_namespace, patches_in, tmp_path
):
    node = shutil.which("node")
    assert node, "the Node SDK's side needs `node` (Node.js 18+) on PATH"
    ours = served_patch(devenv, registry_api, loop_namespace, patches_in, "node")
    with PaymentsServer() as payments, BlockingProxy(registry_api.url) as proxy:
        payments.behaviour.clock_tolerance = 11 * 86400
        env = {
            **os.environ,
            "PAYMENTS_URL": payments.url,
            "PAYMENTS_SECRET_KEY": payments.behaviour.secret_key,
            "MOLAM_SELFHEAL_URL": proxy.url,
            "MOLAM_SELFHEAL_TOKEN": registry_api.token("e2e-node-switched-off"),
            "TRUSTED_KEYS": json.dumps(trusted_keys(registry_api)),
        }
        log = tmp_path / "node-driver.log"
        with log.open("w") as stderr:
            driver = subprocess.Popen(
                [node, str(DRIVER)], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True
            )
        try:

            def pay(later_ms: int = 0) -> dict:
                driver.stdin.write(json.dumps({"later_ms": later_ms, "currency": "XYZ"}) + "\n")
                driver.stdin.flush()
                line = driver.stdout.readline()
                assert line, log.read_text()
                outcome = json.loads(line)
                outcome["ours"] = outcome["applied"].count(ours)
                return outcome

            wait_until(lambda: pay()["payment"], what="a Node call healed by the served patch")
            proxy.block = 503  # blocked: the last verified patch stands in while its envelope lasts...
            assert pay(240_000)["ours"] == 2
            outcome = pay(10 * DAY_MS)  # ...and not ten days later
            assert outcome["error"]["code"] == "invalid_currency" and outcome["ours"] == 2
            proxy.block = None
            assert pay()["ours"] == 3  # served again, then switched off
            kill(registry_api, ours, "node")
            assert pay()["ours"] == 3  # the registry's answer: no patch for it any more
            proxy.block = 429
            assert pay()["ours"] == 3  # blocked afterwards: it does not come back
        finally:
            driver.stdin.close()
            assert driver.wait(timeout=30) == 0, log.read_text()


def _healed(pay):
    try:
        return pay()
    except ApiError:
        return None  # the registry API may not have loaded the patch yet


def _call_without(pay, ours: str, applied: list) -> None:
    """One call, in which `ours` is not applied (another patch may answer; ours never)."""
    before = len(applied)
    try:
        pay()
    except ApiError:
        pass
    assert ours not in [patch.id for patch in applied[before:]]
