"""POST /api/dev/patches: the runbook's curl body becomes a SelfHealPatch (role dev_admin)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlencode

import pytest

from selfheal.core.resource import GROUP, PLURAL, VERSION
from tests.support import wait_until

RUNBOOK = Path(__file__).resolve().parents[2] / "docs" / "runbook.fr.md"


def runbook_create_body() -> dict:
    """The JSON body of the runbook's "Créer un nouveau patch / Via API" curl, verbatim."""
    text = RUNBOOK.read_text(encoding="utf-8")
    block = text[text.index("curl -X POST http://localhost:8140/api/dev/patches") :]
    raw = re.search(r"-d '(\{.*?\})'", block, flags=re.S).group(1)
    return json.loads(raw)


def test_runbook_body_creates_the_resource(api_server, custom_api):
    body = runbook_create_body()
    admin = api_server.token("admin-1", role="dev_admin")
    status, headers, answer = api_server.request("POST", "/api/dev/patches", body=body, token=admin)
    assert status == 201, answer
    created = custom_api.get_namespaced_custom_object(
        GROUP, VERSION, api_server.patch_namespace, PLURAL, answer["name"]
    )
    assert created["spec"]["patchCode"] == body["patch_code"]
    assert (created["spec"]["sdkLanguage"], created["spec"]["errorSignature"], created["spec"]["severity"]) == (
        "node",
        "ECONNREFUSED",
        "high",
    )
    assert created["metadata"]["annotations"]["selfheal.molam.io/created-by"] == "devportal:admin-1"
    # The same body again names the same resource: a conflict, not a duplicate patch.
    assert api_server.request("POST", "/api/dev/patches", body=body, token=admin)[0] == 409


def test_creation_needs_dev_admin(api_server):
    developer = api_server.token("dev-1")
    assert api_server.request("POST", "/api/dev/patches", body=runbook_create_body(), token=developer)[0] == 403


def test_invalid_bodies_name_the_field(api_server):
    admin = api_server.token("admin-2", role="dev_admin")
    body = {**runbook_create_body(), "severity": "urgent"}
    status, _, answer = api_server.request("POST", "/api/dev/patches", body=body, token=admin)
    assert status == 400 and answer["fields"][0]["field"] == "severity"
    body = {**runbook_create_body(), "severity": "critical", "error_signature": "ETIMEDOUT"}
    del body["rollback_code"]
    status, _, answer = api_server.request("POST", "/api/dev/patches", body=body, token=admin)
    assert status == 400 and "rollback" in answer["message"].lower()


def test_delete_is_the_kill_switch(api_server):
    from tests.api.test_serving import insert_served_patch
    from tests.support import wait_until

    insert_served_patch(api_server.database_url, "p-kill", "E_KILL")
    admin, developer = api_server.token("admin-3", role="dev_admin"), api_server.token("dev-3")
    body = {"sdk": "node", "error": "E_KILL"}
    wait_until(
        lambda: api_server.request("POST", "/api/dev/self-heal", body=body, token=developer)[0] == 200,
        what="patch served",
    )
    assert api_server.request("DELETE", "/api/dev/patches/p-kill", token=developer)[0] == 403
    # The runbook's "Désactiver un patch / Via API", verbatim but for the id.
    status, _, answer = api_server.request("DELETE", "/api/dev/patches/p-kill", token=admin)
    assert status == 200 and answer["active"] is False and answer["already_inactive"] is False
    wait_until(
        lambda: api_server.request("POST", "/api/dev/self-heal", body=body, token=developer)[0] == 404,
        timeout=5,
        what="kill switch served",
    )
    import psycopg

    with psycopg.connect(api_server.database_url) as conn:
        (reason,) = conn.execute(
            "SELECT deactivation_reason FROM sdk_self_healing_registry WHERE id = 'p-kill'"
        ).fetchone()
        action, actor = conn.execute(
            "SELECT action, actor FROM sdk_patch_audit WHERE patch_id = 'p-kill' ORDER BY id DESC LIMIT 1"
        ).fetchone()
    assert (reason, action, actor) == ("ManualKillSwitch", "kill-switch", "devportal:admin-3")
    assert api_server.request("DELETE", "/api/dev/patches/p-kill", token=admin)[2]["already_inactive"] is True
    assert api_server.request("DELETE", "/api/dev/patches/nope", token=admin)[0] == 404


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("import os", "patch_code: 1:1: "),
        ('self.base_url = "https://evil.example"', "patch_code: 1:17: "),
        ('self.use_fallback_credential("sk_live_4eC39HqLyjWDarjtT1zdp7dc")', "patch_code: 1:"),
    ],
    ids=["import", "host-off-the-allow-list", "literal-secret"],
)
def test_patch_code_the_operator_would_refuse_is_400_and_nothing_is_created(api_server, custom_api, code, reason):
    admin = api_server.token("admin-4", role="dev_admin")
    body = {**runbook_create_body(), "sdk_language": "python", "error_signature": f"E_REFUSED_{len(code)}"}
    body.update(patch_code=code, rollback_code='self.base_url = "https://api.molam.com"')
    status, _, answer = api_server.request("POST", "/api/dev/patches", body=body, token=admin)
    assert (status, answer["error"]) == (400, "invalid_patch") and answer["message"].startswith(reason), answer
    assert answer["fields"][0]["field"] == "patch_code"
    listed = custom_api.list_namespaced_custom_object(GROUP, VERSION, api_server.patch_namespace, PLURAL)
    assert not [item for item in listed["items"] if item["spec"]["errorSignature"] == body["error_signature"]]
    # Corrected, the same body is created; posted again, it is the one 409: a valid duplicate.
    body["patch_code"] = 'self.base_url = "https://api-backup.molam.com"'
    assert api_server.request("POST", "/api/dev/patches", body=body, token=admin)[0] == 201
    assert api_server.request("POST", "/api/dev/patches", body=body, token=admin)[0] == 409


def test_a_kill_switch_reason_cannot_forge_a_log_line(api_server):
    from tests.api.test_serving import insert_served_patch

    insert_served_patch(api_server.database_url, "p-forge", "E_FORGE")
    admin = api_server.token("admin-5", role="dev_admin")
    reason = "maintenance\n2026-01-01 00:00:00 INFO selfheal.api kill switch: patch p-other switched on\u2028\x1b[2K"
    status, _, _ = api_server.request(
        "DELETE", "/api/dev/patches/p-forge?" + urlencode({"reason": reason}), token=admin
    )
    assert status == 200
    wait_until(lambda: "p-forge switched off" in api_server.log(), timeout=5, what="the kill switch logged")
    lines = api_server.log().splitlines()  # splitlines breaks on U+2028 too, as some viewers do
    [line] = [line for line in lines if "p-forge switched off" in line]
    assert "maintenance\\n2026-01-01" in line and "\\u2028\\x1b[2K" in line
    assert not any(line.startswith("2026-01-01 00:00:00 INFO") for line in lines)
