"""Outcome reports count only for patches the registry served to that token (issue 14, point 1).

Against a real `selfheal api` and PostgreSQL: every answer carries a receipt bound to the token's
developer, the patch, its version and the envelope's expiry; a report naming a patch without a
valid receipt, or with `applied_at` outside −15 min … +1 min of the server's clock, is refused
with 400 naming the field and the reason, and nothing of it is stored. A developer the guard
switched a patch off for is no longer served it; the others still are.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from selfheal.core import receipts
from tests.api.test_serving import insert_served_patch
from tests.support import wait_until

REPORTS = "/api/dev/self-heal/reports"


@pytest.fixture(scope="module")
def served(api_server):
    """A served patch, and a lookup for it as each developer."""
    patch_id = f"p-receipt-{uuid.uuid4().hex[:8]}"
    code = f"receipt_probe_{uuid.uuid4().hex[:8]}"
    insert_served_patch(api_server.database_url, patch_id, code)

    def lookup(token: str) -> tuple[int, dict]:
        status, _, answer = api_server.request(
            "POST", "/api/dev/self-heal", token=token, body={"sdk": "node", "error": f"E {code}", "code": code}
        )
        return status, answer

    probe = api_server.token("dev-receipt-probe")
    wait_until(lambda: lookup(probe)[0] == 200, what="the patch served")
    return patch_id, lookup


def report(patch_id: str, receipt: str | None, **changes) -> dict:
    return {"patch_id": patch_id, "sdk": "node", "error": "E", "success": False, "receipt": receipt, **changes}


def stored(database_url: str, developer: str) -> int:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT count(*) FROM sdk_patch_applications WHERE developer_id = %s AND patch_id IS NOT NULL",
            (developer,),
        ).fetchone()[0]


def test_a_report_with_the_answers_receipt_is_accepted_and_stored(api_server, served):
    patch_id, lookup = served
    token = api_server.token("dev-receipt-ok")
    status, answer = lookup(token)
    assert status == 200 and answer["receipt"].count(".") >= 2, answer
    status, _, body = api_server.request(
        "POST", REPORTS, token=token, body={"reports": [report(patch_id, answer["receipt"])]}
    )
    assert (status, body["accepted"], body["rejected"]) == (202, 1, [])
    wait_until(lambda: stored(api_server.database_url, "dev-receipt-ok") == 1, what="the report stored")


@pytest.mark.parametrize(
    "case, reason",
    [
        ("missing", "no receipt"),
        ("another developer's", "receipt not issued to this token for this patch"),
        ("another patch's", "receipt not issued to this token for this patch"),
        ("forged", "receipt not issued to this token for this patch"),
        ("malformed", "malformed receipt"),
        ("expired", "receipt expired more than 15 minutes ago"),
    ],
)
def test_a_report_without_a_receipt_issued_to_this_token_for_this_patch_is_refused(api_server, served, case, reason):
    patch_id, lookup = served
    developer = f"dev-receipt-{uuid.uuid4().hex[:6]}"
    token, other = api_server.token(developer), api_server.token(f"{developer}-other")
    own = lookup(token)[1]["receipt"]
    expires, mac, version = own.split(".", 2)
    receipt = {
        "missing": None,
        "another developer's": lookup(other)[1]["receipt"],
        "another patch's": own,
        "forged": f"{int(expires) + 86400}.{mac}.{version}",
        "malformed": "x" * 40,
        "expired": receipts.issue(
            b"not the key", developer_id=developer, patch_id=patch_id, version=version, expires_at=1
        ),
    }[case]
    named = "p-receipt-elsewhere" if case == "another patch's" else patch_id
    if case == "another patch's":
        insert_served_patch(api_server.database_url, named, f"elsewhere_{uuid.uuid4().hex[:6]}")
        wait_until(
            lambda: (
                api_server.request("POST", REPORTS, token=token, body={"reports": [report(named, None)]})[2].get(
                    "error"
                )
                != "unknown_patch"
            ),
            what="the other patch known",
        )
    status, _, body = api_server.request("POST", REPORTS, token=token, body={"reports": [report(named, receipt)]})
    assert status == 400, body
    [refused] = body["fields"]
    assert refused["field"] == "reports.0.receipt"
    assert refused["reason"].startswith(reason) or (case == "expired" and refused["reason"].startswith("receipt not"))
    assert stored(api_server.database_url, developer) == 0


def test_an_expired_receipt_issued_with_the_servers_key_is_refused(api_server, served):
    """A receipt older than its envelope's expiry plus 15 minutes: the SDK may no longer report with it."""
    patch_id, lookup = served
    token = api_server.token("dev-receipt-old")
    version = lookup(token)[1]["receipt"].split(".", 2)[2]
    key = receipts.derive_key(api_server.signing_key().secret_bytes())
    old = int((datetime.now(UTC) - timedelta(minutes=16)).timestamp())
    stale = receipts.issue(key, developer_id="dev-receipt-old", patch_id=patch_id, version=version, expires_at=old)
    status, _, body = api_server.request("POST", REPORTS, token=token, body={"reports": [report(patch_id, stale)]})
    assert (status, body["fields"][0]["reason"]) == (400, "receipt expired more than 15 minutes ago"), body


@pytest.mark.parametrize("minutes", [-16, -60 * 24 * 365 * 2000, 2, 60 * 24])
def test_applied_at_outside_the_window_of_the_servers_clock_is_refused(api_server, served, minutes):
    patch_id, lookup = served
    developer = f"dev-applied-{uuid.uuid4().hex[:6]}"
    token = api_server.token(developer)
    receipt = lookup(token)[1]["receipt"]
    try:
        when = (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat()
    except OverflowError:
        when = "0001-01-01T00:00:00+00:00"
    status, _, body = api_server.request(
        "POST", REPORTS, token=token, body={"reports": [report(patch_id, receipt, applied_at=when)]}
    )
    assert status == 400 and body["fields"][0]["field"] == "reports.0.applied_at", body
    assert "15 minutes before or 1 minute after" in body["fields"][0]["reason"]
    # Within the window it is accepted: the window, not the field, is what refused it.
    recent = (datetime.now(UTC) - timedelta(minutes=14)).isoformat()
    status, _, body = api_server.request(
        "POST", REPORTS, token=token, body={"reports": [report(patch_id, receipt, applied_at=recent)]}
    )
    assert status == 202 and body["accepted"] == 1, body


def test_a_report_with_a_receipt_costs_only_itself_when_its_neighbour_has_none(api_server, served):
    patch_id, lookup = served
    token = api_server.token("dev-receipt-mixed")
    receipt = lookup(token)[1]["receipt"]
    batch = {"reports": [report(patch_id, receipt), report(patch_id, None), report(patch_id, receipt)]}
    status, _, body = api_server.request("POST", REPORTS, token=token, body=batch)
    assert (status, body["accepted"]) == (202, 2)
    assert [(r["index"], r["field"]) for r in body["rejected"]] == [(1, "reports.1.receipt")]


def test_a_developer_the_guard_switched_a_patch_off_for_is_not_served_it_and_others_are(api_server, served):
    patch_id, lookup = served
    blocked, other = api_server.token("dev-switched-off"), api_server.token("dev-still-served")
    with psycopg.connect(api_server.database_url) as conn:
        conn.execute(
            "INSERT INTO sdk_patch_developer_switch_offs (patch_id, developer_id, rule, message)"
            " VALUES (%s, 'dev-switched-off', 'HighRollbackRate', 'test')",
            (patch_id,),
        )
    status, answer = wait_until(lambda: (r := lookup(blocked))[0] == 404 and r, what="the patch no longer served")
    assert "switched off for this token by the guard" in answer["message"]
    assert lookup(other)[0] == 200
    with psycopg.connect(api_server.database_url) as conn:
        conn.execute("DELETE FROM sdk_patch_developer_switch_offs WHERE patch_id = %s", (patch_id,))
    wait_until(lambda: lookup(blocked)[0] == 200, what="served again once cleared")
