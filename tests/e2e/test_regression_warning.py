"""The Regression rule end to end: a real operator (metrics served, the notification webhook set to
a real HTTP server of this test), the real registry API, real PostgreSQL, and the Python SDK's
traffic raising a patch's failure rate well above its own baseline, while staying under the
runbook's absolute thresholds (rollback 20 %, failure 50 %), which never see it.

The baseline is the 24 hours before the current hour: the operator has not run that long, so
those rows are written in SQL with past `applied_at` (the guard reads them as any other
applications), and the patch's start of service (`sdk_guard_state.since`) is moved back a day. The regression itself is live traffic: every seventh healed call fails on retry
and rolls back (14 %, against a 1 % baseline).

One regression drives the module (the fixture `regression`); each test checks one of the four
ways the warning reaches someone: the `Regression` condition, the Warning event, the
`selfheal_guard_warnings_total` metric and the webhook's notification.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import kubernetes
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from molam import ApiError
from tests.api_server import start_api_server
from tests.conftest import _new_database
from tests.e2e.test_self_healing_loop import client_for, trusted_keys
from tests.sdk.payments_server import PaymentsServer
from tests.support import LocalHttpServer, OperatorProcess, free_port, new_namespace, own_world, wait_until

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = "python-invalid-currency-xof"
BASELINE = 2_400  # ≥ the rule's 2,000 minimum: one a minute or so over the 24 hours before this one
BASELINE_FAILURES = 24  # 1 %
FAIL_EVERY = 7  # one healed call in seven fails on retry: 14 %, under the 20 % rollback threshold
TRAFFIC_SECONDS = 180
REGRESSION = "Regression"


class Receiver(LocalHttpServer):
    """The notification webhook's other end: keeps every JSON body posted to it."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.received.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self._listen(Handler)


# A control plane of this module's own: its operator must serve metrics and notify the receiver,
# and the session's operator would handle the same objects.
@pytest.fixture(scope="module")
def devenv():
    with own_world("selfheal-regression-devenv-") as env:
        yield env


@pytest.fixture(scope="module")
def kube_client(devenv) -> kubernetes.client.ApiClient:
    return kubernetes.config.new_client_from_config(config_file=str(devenv.kubeconfig))


@pytest.fixture(scope="module")
def receiver():
    with Receiver() as server:
        yield server


@pytest.fixture(scope="module")
def world(devenv, kube_client, receiver, tmp_path_factory):
    database_url = _new_database(devenv.postgres.url("postgres"), devenv, "regression")
    namespace = new_namespace(kube_client, "regression")
    metrics_port = free_port()
    operator = OperatorProcess(
        kubeconfig=devenv.kubeconfig,
        database_url=database_url,
        log_file=tmp_path_factory.mktemp("regression-operator") / "operator.log",
        extra_args=("--metrics-port", str(metrics_port), "--guard-webhook-url", receiver.url + "/hook"),
    )
    operator.start()
    api = start_api_server(
        database_url=database_url,
        kubeconfig=devenv.kubeconfig,
        patch_namespace=namespace,
        directory=tmp_path_factory.mktemp("regression-api"),
        rate=100_000,
        extra_args=("--address-rate", "100000"),
    )
    try:
        yield {
            "database_url": database_url,
            "namespace": namespace,
            "operator": operator,
            "metrics": f"http://127.0.0.1:{metrics_port}/metrics",
            "api": api,
            "devenv": devenv,
        }
    finally:
        api.stop()
        operator.stop()


def shp(kube_client, namespace: str, name: str) -> dict:
    return kubernetes.client.CustomObjectsApi(kube_client).get_namespaced_custom_object(
        "selfheal.molam.io", "v1alpha1", namespace, "selfhealpatches", name
    )


def condition(resource: dict, type_: str) -> dict | None:
    return next((c for c in (resource.get("status") or {}).get("conditions") or [] if c["type"] == type_), None)


def insert_baseline(database_url: str, patch_id: str) -> None:
    """BASELINE applications spread evenly over [H - 24 h, H - 1 h), H the current hour's start:
    inside the baseline's 24 hours, outside every absolute rule's window. The guard counts only
    data from when the patch came into service (`sdk_guard_state.since`, set as the operator
    activated it a moment ago): that moves back to H - 25 h, as for a patch serving since yesterday."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE sdk_guard_state SET since = date_trunc('hour', now()) - interval '25 hours' WHERE patch_id = %s",
            (patch_id,),
        )
        conn.execute(
            """INSERT INTO sdk_patch_applications (patch_id, developer_id, sdk_language, error_encountered,
                                                   success, rollback_triggered, applied_at)
               SELECT %(id)s, 'regression-baseline', 'python', '400 Bad Request: invalid_currency',
                      i >= %(failures)s, i < %(failures)s,
                      date_trunc('hour', now()) - interval '24 hours' + i * (interval '23 hours' / %(total)s)
               FROM generate_series(0, %(total)s - 1) AS i""",
            {"id": patch_id, "failures": BASELINE_FAILURES, "total": BASELINE},
        )


@pytest.fixture(scope="module")
def regression(world, kube_client):
    """The sample patch, its baseline, then live traffic at 14 % failures until the Regression
    condition is set: {"name", "id", "calls", "failed"}."""
    devenv, namespace = world["devenv"], world["namespace"]
    kubectl = [str(devenv.bin_dir / "kubectl"), "--kubeconfig", str(devenv.kubeconfig), "-n", namespace]
    subprocess.run([*kubectl, "apply", "-f", str(ROOT / "samples" / f"{SAMPLE}.yaml")], check=True, capture_output=True)
    subprocess.run(
        [*kubectl, "wait", "--for=condition=Ready", f"shp/{SAMPLE}", "--timeout=60s"], check=True, capture_output=True
    )
    patch_id = shp(kube_client, namespace, SAMPLE)["status"]["registryId"]
    insert_baseline(world["database_url"], patch_id)
    api = world["api"]
    calls = failed = 0
    with PaymentsServer() as payments:
        # Two developers' clients (distinct tokens) take turns: the evidence is not one token's.
        clients = [
            client_for(payments, selfheal_url=api.url, token=api.token(dev), trusted=trusted_keys(api), applied=[])
            for dev in ("regression-dev-1", "regression-dev-2")
        ]

        def warned() -> dict | None:
            found = condition(shp(kube_client, namespace, SAMPLE), "Regression")
            return found if found and found["status"] == "True" else None

        # Traffic until the guard's cycle counts the warning (the condition follows with the next
        # figures pass, every 15 s): its buckets count once settled, seconds after the calls.
        deadline = time.monotonic() + TRAFFIC_SECONDS
        try:
            while not (calls % 50 == 0 and warnings_counted(world["metrics"]).get(REGRESSION)):
                assert time.monotonic() < deadline, (
                    f"no Regression warning after {calls} calls ({failed} failed); operator log:\n"
                    + world["operator"].log_tail()
                )
                calls += 1
                failing = calls % FAIL_EVERY == 0
                # The healed retry pays in XOF: refused for this call only, it fails and rolls back.
                payments.behaviour.currencies = frozenset({"EUR", "USD"} if failing else {"XOF", "EUR", "USD"})
                try:
                    clients[calls % 2].create_payment(amount=100, currency="XYZ", country="SN")
                except ApiError:
                    failed += 1
            assert all(client.flush_reports() for client in clients)
        finally:
            for client in clients:
                client.close()
    wait_until(warned, timeout=60, what="the Regression condition")
    return {"name": SAMPLE, "id": patch_id, "calls": calls, "failed": failed}


def test_the_warning_is_the_regression_condition_and_the_patch_stays_active(regression, world, kube_client):
    resource = shp(kube_client, world["namespace"], regression["name"])
    warning = condition(resource, "Regression")
    assert (warning["status"], warning["reason"]) == ("True", "Regression")
    assert "baseline 1.0% (24/2400 over 24 h)" in warning["message"] and "crossed" in warning["message"]
    assert resource["status"]["guard"]["state"] == "Warning: Regression"
    # A warning, not a deactivation: still served. The runbook's thresholds never fired.
    assert condition(resource, "Active")["status"] == "True"
    with psycopg.connect(world["database_url"]) as conn:
        assert conn.execute(
            "SELECT active FROM sdk_self_healing_registry WHERE id = %s", (regression["id"],)
        ).fetchone() == (True,)
    assert 0 < regression["failed"] < regression["calls"] * 0.2


def test_a_warning_event_is_posted_on_the_patch(regression, world, kube_client):
    resource = shp(kube_client, world["namespace"], regression["name"])

    def events() -> list:
        found = kubernetes.client.CoreV1Api(kube_client).list_namespaced_event(world["namespace"]).items
        return [e for e in found if e.involved_object.uid == resource["metadata"]["uid"] and e.reason == "Regression"]

    [event] = wait_until(events, what="the Regression event")
    assert event.type == "Warning" and event.involved_object.kind == "SelfHealPatch"
    assert event.involved_object.name == regression["name"] and "baseline 1.0%" in event.message


def warnings_counted(metrics_url: str) -> dict[str, float]:
    """`selfheal_guard_warnings_total` by rule, as the operator serves it."""
    with urllib.request.urlopen(metrics_url, timeout=5) as response:
        families = {f.name: f for f in text_string_to_metric_families(response.read().decode())}
    return {s.labels["rule"]: s.value for s in families["selfheal_guard_warnings"].samples if s.name.endswith("_total")}


def test_the_warnings_counter_counts_it_once(regression, world):
    assert warnings_counted(world["metrics"]) == {REGRESSION: 1.0}


def test_the_webhook_receives_the_notification(regression, world, receiver):
    def notified() -> list[dict]:
        with receiver.lock:
            return [body for body in receiver.received if body["selfheal"].get("patch_id") == regression["id"]]

    [body] = wait_until(notified, what="the webhook's notification")
    assert body["text"].startswith(f":warning: {world['namespace']}/{regression['name']}: Regression: ")
    assert body["selfheal"]["state"] == "Warning: Regression" and "baseline 1.0%" in body["selfheal"]["message"]
