"""`--log-format json`: every line the operator and the API write is one JSON object, UTC stamps."""

from __future__ import annotations

import datetime
import json

from tests.api_server import start_api_server
from tests.support import OperatorProcess, Patches, new_namespace, wait_until


def json_lines(text: str) -> list[dict]:
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines, "nothing was logged"
    objects = []
    for line in lines:
        try:
            objects.append(json.loads(line))
        except json.JSONDecodeError:
            raise AssertionError(f"not a JSON line: {line!r}") from None
    for entry in objects:
        stamp = datetime.datetime.fromisoformat(entry["timestamp"])
        assert stamp.utcoffset() == datetime.timedelta(0), entry
        assert entry["severity"] in ("debug", "info", "warn", "error", "fatal") and "message" in entry, entry
    return objects


def test_the_api_logs_json_and_its_self_heal_line_keeps_the_word(fresh_database, devenv, kube_client, tmp_path):
    namespace = new_namespace(kube_client, "jsonlog")
    server = start_api_server(
        database_url=fresh_database,
        kubeconfig=devenv.kubeconfig,
        patch_namespace=namespace,
        directory=tmp_path,
        extra_args=("--log-format", "json"),
    )
    try:
        token = server.token("dev-json")
        status, _, _ = server.request(
            "POST", "/api/dev/self-heal", token=token, body={"sdk": "node", "error": "no patch for this", "status": 500}
        )
        assert status == 404
        wait_until(lambda: "self-heal" in server.log(), timeout=10, what="the self-heal line")
    finally:
        server.stop()
    entries = json_lines(server.log())
    [line] = [entry for entry in entries if entry["message"] == "self-heal"]
    assert (line["developer"], line["error"], line["logger"]) == ("dev-json", "no patch for this", "selfheal.api")
    assert any("signing with key id" in entry["message"] for entry in entries)


def test_the_operator_logs_json(devenv, fresh_database, custom_api, kube_client, tmp_path):
    # Its own namespace and database: another operator may watch the rest of the test cluster.
    namespace = new_namespace(kube_client, "jsonop")
    log_file = tmp_path / "operator.log"
    process = OperatorProcess(
        kubeconfig=devenv.kubeconfig,
        database_url=fresh_database,
        log_file=log_file,
        extra_args=("--log-format", "json", "--namespace", namespace),
    )
    process.start()
    try:
        patches = Patches(custom_api, namespace)
        patches.create("json-logs")
        patches.wait_condition("json-logs", "Ready", status="True", timeout=60)
    finally:
        process.stop()
    json_lines(log_file.read_text())
