"""The six corrections healed end to end: a real payments server that produces each error, the
SDK over real HTTP, and a registry stub over real HTTP serving envelopes signed in the test.

The full registry API end to end (operator, PostgreSQL, kubectl applying the patch) is a
separate test the lead writes; this one pins the SDK's side of the loop.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import socket
import time
from datetime import UTC, datetime, timedelta

import pytest

from molam import ApiError, MolamTimeout
from tests.sdk.registry_stub import payload_for, receipt_for
from tests.sdk.sealing import CURRENT, seal

FALLBACK = [
    {"op": "use_fallback_credential", "name": "MOLAM_FALLBACK_API_KEY"},
    {"op": "log", "level": "warning", "message": "⚡ 401: using fallback API key"},
]
PRIMARY = [{"op": "use_primary_credential"}]


def wait_until(condition, *, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_401_revoked_key_heals_with_the_fallback_key_named_in_the_patch(
    payments, registry, make_client, applied, caplog
):
    payments.behaviour.revoked_keys = {"pk_primary"}
    patch_id = registry.add(
        "401", FALLBACK, PRIMARY, description="Injection clé API fallback sur 401", severity="critical"
    )
    client = make_client()
    with caplog.at_level(logging.INFO, logger="molam"):
        payment = client.create_payment(amount=5000, currency="XOF", country="SN")
    assert payment["status"] == "succeeded"
    assert payments.requests[-1]["headers"]["authorization"] == "Bearer pk_fallback"
    assert client.state.credential == "MOLAM_FALLBACK_API_KEY"
    # The runbook's request body, with the error's code beside it.
    assert registry.lookups == [
        {
            "sdk": "python",
            "error": "401 Unauthorized: api_key_revoked",
            "status": 401,
            "code": "api_key_revoked",
            "context": {
                "operation": "create_payment",
                "method": "POST",
                "path": "/v1/payments",
                "sdk_version": "0.1.0",
            },
        }
    ]
    assert "⚡ Molam SDK applied self-healing patch" in caplog.text
    assert "⚡ 401: using fallback API key" in caplog.text
    [patch] = applied
    assert (patch.id, patch.description, patch.severity, patch.success, patch.rollback_triggered) == (
        patch_id,
        "Injection clé API fallback sur 401",
        "critical",
        True,
        False,
    )
    assert client.get_patch_history() == [patch]
    wait_until(lambda: len(registry.reports) == 1)
    report = registry.reports[0]
    fields = ("patch_id", "sdk", "error", "success", "rollback_triggered", "patch_applied", "receipt")
    assert {k: report[k] for k in fields} == {
        "patch_id": patch_id,
        "sdk": "python",
        "error": "401 Unauthorized: api_key_revoked",
        "success": True,
        "rollback_triggered": False,
        "patch_applied": True,
        "receipt": receipt_for(patch_id),  # the answer's receipt, sent back unread
    }
    # Healed in memory: the next call goes straight through.
    client.get_payment(payment["id"])
    assert len(registry.lookups) == 1


def test_timeout_heals_by_raising_the_timeout_and_charges_once(payments, registry, make_client):
    payments.behaviour.slow_seconds = 0.6
    registry.add(
        "Timeout",
        [{"op": "set", "setting": "timeout_ms", "value": 5000}],
        [{"op": "set", "setting": "timeout_ms", "value": 300}],
    )
    client = make_client(timeout=0.3)
    payment = client.create_payment(amount=1200, currency="XOF", country="SN")
    assert client.timeout == 5.0
    assert registry.lookups[0]["error"].startswith("Timeout: ") and registry.lookups[0]["code"] == "Timeout"
    assert "status" not in registry.lookups[0]
    # The slow first attempt and the retry share one Idempotency-Key: one payment, not two.
    wait_until(lambda: payments.finished == 2)  # the first, abandoned attempt finished on the server too
    assert list(payments.payments) == [payment["id"]]


def test_invalid_currency_heals_with_the_default_currency(payments, registry, make_client):
    registry.add(
        "invalid_currency",
        [{"op": "set", "setting": "default_currency", "value": "XOF"}],
        [{"op": "set", "setting": "default_currency", "value": None}],
    )
    client = make_client()
    payment = client.create_payment(amount=900, currency="XYZ", country="SN")
    assert payment["currency"] == "XOF"
    assert registry.lookups[0]["code"] == "invalid_currency" and registry.lookups[0]["status"] == 400


def test_bad_hmac_signature_from_a_skewed_clock_heals_by_signing_with_server_time(payments, registry, make_client):
    registry.add(
        "invalid_signature",
        [{"op": "resign_request", "use_server_time": True}],
        [{"op": "set", "setting": "clock_skew_seconds", "value": 0}],
    )
    client = make_client(clock=lambda: time.time() - 120)  # this machine's clock is two minutes late
    payment = client.create_payment(amount=700, currency="XOF", country="SN")
    assert payment["status"] == "succeeded"
    assert 118 <= client.clock_skew_seconds <= 122  # measured from the server's Date header
    client.get_payment(payment["id"])
    assert len(registry.lookups) == 1


def test_429_heals_with_backoff_and_honours_retry_after(payments, registry, make_client):
    payments.behaviour.rate_limited_requests = 2
    payments.behaviour.retry_after_seconds = 1
    registry.add(
        "429",
        [{"op": "retry_with_backoff", "attempts": 3, "base_delay_ms": 10, "max_delay_ms": 2000, "jitter": False}],
        [{"op": "set", "setting": "max_retries", "value": 0}],
    )
    client = make_client()
    started = time.monotonic()
    payment = client.create_payment(amount=300, currency="XOF", country="SN")
    assert payment["status"] == "succeeded"
    assert time.monotonic() - started >= 1.0  # waited Retry-After, not just the 10 ms backoff
    assert client.max_retries == 3 and len(payments.requests) == 3


def test_429_retry_after_beyond_the_patch_max_delay_is_not_hammered(payments, registry, make_client):
    payments.behaviour.rate_limited_requests = 5
    payments.behaviour.retry_after_seconds = 30
    registry.add(
        "429",
        [{"op": "retry_with_backoff", "attempts": 3, "base_delay_ms": 10, "max_delay_ms": 2000, "jitter": True}],
        [{"op": "set", "setting": "max_retries", "value": 0}],
    )
    client = make_client()
    with pytest.raises(ApiError) as raised:
        client.create_payment(amount=300, currency="XOF", country="SN")
    assert raised.value.status == 429 and len(payments.requests) == 2
    assert client.max_retries == 0  # rolled back


def test_400_missing_required_field_heals_by_filling_defaults(payments, registry, make_client):
    registry.add(
        "400",
        [
            {"op": "fill_required_fields", "fields": {"country": "SN"}},
            {"op": "log", "level": "warning", "message": "⚡ 400: required fields filled"},
        ],
        [{"op": "clear_filled_fields"}],
    )
    client = make_client()
    payment = client.create_payment(amount=100, currency="XOF")
    assert payment["country"] == "SN"
    assert client.create_payment(amount=100, currency="XOF", country="CI")["country"] == "CI"  # caller's value wins


def test_a_failed_retry_rolls_back_at_once_and_says_so(payments, registry, make_client, applied, caplog):
    payments.behaviour.revoked_keys = {"pk_primary", "pk_fallback"}
    patch_id = registry.add("401", FALLBACK, PRIMARY)
    client = make_client()
    with caplog.at_level(logging.WARNING, logger="molam"), pytest.raises(ApiError) as raised:
        client.create_payment(amount=5000, currency="XOF", country="SN")
    assert raised.value.status == 401
    assert client.state.credential is None
    assert "rolled back self-healing patch" in caplog.text
    assert [(p.id, p.success, p.rollback_triggered) for p in applied] == [(patch_id, False, True)]
    wait_until(lambda: len(registry.reports) == 1)
    assert (registry.reports[0]["success"], registry.reports[0]["rollback_triggered"]) == (False, True)


def test_a_patch_without_rollback_operations_restores_the_previous_settings(payments, registry, make_client):
    payments.behaviour.revoked_keys = {"pk_primary", "pk_fallback"}
    registry.add("401", FALLBACK + [{"op": "set", "setting": "max_retries", "value": 2}], None)
    client = make_client()
    before = client.state
    with pytest.raises(ApiError):
        client.create_payment(amount=5000, currency="XOF", country="SN")
    assert client.state == before


def _rewrite_payload(envelope: dict) -> dict:
    # Still valid JSON with valid operations: only the signature can tell.
    payload = base64.b64decode(envelope["payload"]).replace(b'"test patch"', b'"evil patch"')
    return {**envelope, "payload": base64.b64encode(payload).decode()}


@pytest.mark.parametrize(
    "tamper",
    [
        _rewrite_payload,
        lambda envelope: {**envelope, "signatures": [{**envelope["signatures"][0], "keyId": "0000000000000000"}]},
    ],
    ids=["payload", "key_id"],
)
def test_a_tampered_envelope_is_refused_and_the_original_error_raised(payments, registry, make_client, applied, tamper):
    payments.behaviour.revoked_keys = {"pk_primary"}
    registry.add("401", FALLBACK, PRIMARY)
    registry.tamper = tamper
    client = make_client()
    before = client.state
    with pytest.raises(ApiError) as raised:
        client.create_payment(amount=5000, currency="XOF", country="SN")
    assert raised.value.code == "api_key_revoked"
    assert client.state == before and applied == []
    wait_until(lambda: len(registry.reports) == 1)
    assert registry.reports[0]["patch_applied"] is False and registry.reports[0]["patch_id"] is None


def test_an_expired_or_oversized_envelope_is_refused(payments, registry, make_client):
    payments.behaviour.revoked_keys = {"pk_primary"}
    registry.add("401", FALLBACK, PRIMARY, ttl=-1)
    with pytest.raises(ApiError):
        make_client().create_payment(amount=1, currency="XOF", country="SN")
    registry.add("401", FALLBACK, PRIMARY)
    with pytest.raises(ApiError):
        make_client(max_envelope_bytes=256).create_payment(amount=1, currency="XOF", country="SN")
    assert len(registry.lookups) == 2


def test_an_envelope_replayed_with_an_older_sequence_is_refused(payments, registry, make_client):
    registry.add("invalid_currency", [{"op": "set", "setting": "default_currency", "value": "XOF"}], None, sequence=7)
    client = make_client()
    client.create_payment(amount=1, currency="XYZ", country="SN")
    registry.add("invalid_currency", [{"op": "set", "setting": "default_currency", "value": "EUR"}], None, sequence=6)
    with pytest.raises(ApiError):
        client.create_payment(amount=1, currency="XYZ", country="SN")
    assert client.default_currency == "XOF"


def test_registry_unreachable_uses_the_last_verified_patch(payments, registry, make_client):
    registry.add("invalid_currency", [{"op": "set", "setting": "default_currency", "value": "XOF"}], None)
    client = make_client()
    client.create_payment(amount=1, currency="XYZ", country="SN")
    registry.lookup_status = 503
    assert client.create_payment(amount=2, currency="XYZ", country="SN")["currency"] == "XOF"
    assert len(client.get_patch_history()) == 2
    # The registry saying "no patch" (switched off) ends the fallback.
    registry.lookup_status = None
    registry.patches.clear()
    with pytest.raises(ApiError):
        client.create_payment(amount=3, currency="XYZ", country="SN")
    registry.lookup_status = 503
    with pytest.raises(ApiError):
        client.create_payment(amount=4, currency="XYZ", country="SN")


def test_registry_down_without_a_verified_patch_behaves_as_a_plain_sdk(payments, make_client):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"  # bound, never listening: refused
    payments.behaviour.revoked_keys = {"pk_primary"}
    client = make_client(selfheal_url=url)
    with pytest.raises(ApiError) as raised:
        client.create_payment(amount=1, currency="XOF", country="SN")
    assert raised.value.code == "api_key_revoked"


def test_a_silent_registry_never_holds_the_caller_beyond_its_timeout(payments, make_client):
    with socket.socket() as silent:  # accepts connections (backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        payments.behaviour.revoked_keys = {"pk_primary"}
        client = make_client(selfheal_url=f"http://127.0.0.1:{silent.getsockname()[1]}", timeout=0.5)
        # Returning at all is the behaviour (without the timeout the call would hang on the silent
        # registry); the caller waited one timeout, not several: one lookup connection.
        with pytest.raises(ApiError):
            client.create_payment(amount=1, currency="XOF", country="SN")
        silent.setblocking(False)
        lookups = 0
        with contextlib.suppress(BlockingIOError):
            while True:
                silent.accept()[0].close()
                lookups += 1
        assert lookups == 1


def test_reports_are_kept_while_the_registry_answers_503_and_sent_later(payments, registry, make_client):
    registry.add("400", [{"op": "fill_required_fields", "fields": {"country": "SN"}}], [{"op": "clear_filled_fields"}])
    registry.reports_status = 503
    client = make_client()
    client.create_payment(amount=100, currency="XOF")
    wait_until(lambda: registry.report_posts >= 2)
    assert client.pending_reports == 1 and registry.reports == []
    registry.reports_status = 202
    assert client.flush_reports()
    assert [report["success"] for report in registry.reports] == [True]
    assert client.pending_reports == 0


def test_reports_never_wait_on_the_caller_path(payments, registry, make_client):
    registry.add("400", [{"op": "fill_required_fields", "fields": {"country": "SN"}}], None)
    registry.reports_gate.clear()  # the registry takes reports only when the test says so
    client = make_client()
    # Both calls return while the registry holds the report post until the test opens the gate:
    # a caller that waited on its report would never return (no wall-clock bound needed).
    client.create_payment(amount=100, currency="XOF")
    client.create_payment(amount=100, currency="XOF", country="CI")
    assert registry.reports == []
    wait_until(lambda: registry.report_posts == 1)  # the report thread is stuck in the post, not the caller
    registry.reports_gate.set()
    wait_until(lambda: len(registry.reports) == 1)


def test_a_raising_callback_does_not_fail_a_healed_call(payments, registry, make_client):
    registry.add("400", [{"op": "fill_required_fields", "fields": {"country": "SN"}}], None)
    client = make_client(on_patch_applied=lambda patch: 1 / 0)
    assert client.create_payment(amount=100, currency="XOF")["country"] == "SN"


def test_without_self_healing_errors_are_raised_and_the_registry_is_not_asked(payments, registry, make_client):
    payments.behaviour.revoked_keys = {"pk_primary"}
    registry.add("401", FALLBACK, PRIMARY)
    with pytest.raises(ApiError):
        make_client(enable_self_healing=False).create_payment(amount=1, currency="XOF", country="SN")
    with pytest.raises(ApiError):  # nothing of self-healing configured (the runbook's example): off
        make_client(selfheal_token=None, trusted_keys=None).create_payment(amount=1, currency="XOF", country="SN")
    assert registry.lookups == []


def test_errors_that_are_not_healable_skip_the_registry(payments, registry, make_client):
    with pytest.raises(ApiError) as raised:
        make_client().get_payment("pay_missing")
    assert raised.value.status == 404 and registry.lookups == []


def test_refund_and_payment_round_trip(payments, make_client):
    client = make_client()
    payment = client.create_payment(amount=5000, currency="XOF", country="SN", description="order 42")
    assert client.get_payment(payment["id"]) == payment
    assert client.refund(payment["id"], amount=1000)["amount"] == 1000


def test_a_timed_out_call_without_a_patch_raises_molam_timeout(payments, registry, make_client):
    payments.behaviour.slow_seconds = 0.5
    with pytest.raises(MolamTimeout):
        make_client(timeout=0.2).create_payment(amount=1, currency="XOF", country="SN")
    assert registry.lookups[0]["code"] == "Timeout"


# --- A switched-off or expired patch is never applied (issue 14, point 4) -----------------------

CURRENCY = [{"op": "set", "setting": "default_currency", "value": "XOF"}]
DAY = 86400


def _unreachable(registry, how: str) -> None:
    if how == "timeout":
        registry.lookup_gate.clear()  # lookups get no answer: the SDK's lookup times out
    else:
        registry.lookup_status = int(how)


@pytest.mark.parametrize("how", ["429", "503", "timeout"])
def test_a_registry_kept_unreachable_does_not_keep_an_expired_patch_alive(
    payments, registry, make_client, applied, caplog, how
):
    payments.behaviour.clock_tolerance = 11 * DAY  # the client's clock runs ahead; HMAC must still pass
    registry.add("invalid_currency", CURRENCY, None, ttl=300)
    later = [0.0]
    client = make_client(clock=lambda: time.time() + later[0], timeout=0.5)
    client.create_payment(amount=1, currency="XYZ", country="SN")  # served, verified, cached
    _unreachable(registry, how)
    later[0] = 240  # within the envelope's 300 s: the last verified patch stands in
    assert client.create_payment(amount=2, currency="XYZ", country="SN")["currency"] == "XOF"
    assert len(applied) == 2
    later[0] = 10 * DAY  # ten days after expires_at, the registry still blocked
    with caplog.at_level(logging.WARNING, logger="molam"), pytest.raises(ApiError) as raised:
        client.create_payment(amount=3, currency="XYZ", country="SN")
    assert raised.value.code == "invalid_currency" and len(applied) == 2
    assert "last verified patch dropped: patch p-invalid_currency envelope expired at" in caplog.text


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"ahead": timedelta(minutes=6)}, "is more than 300 s ahead of this clock"),
        ({"ttl": DAY + 1}, "lifetime of 86401 s is above the 86400 s maximum"),
        ({"ttl": 365 * DAY}, "above the 86400 s maximum"),
    ],
    ids=["issued_in_the_future", "lifetime_above_a_day", "lifetime_of_a_year"],
)
def test_an_envelope_the_registry_would_not_issue_is_refused(payments, registry, make_client, applied, options, reason):
    options = dict(options)
    if "ahead" in options:  # from now, not from when the tests were collected
        options["now"] = datetime.now(UTC) + options.pop("ahead")
    registry.add("invalid_currency", CURRENCY, None, **options)
    client = make_client()
    with pytest.raises(ApiError):
        client.create_payment(amount=1, currency="XYZ", country="SN")
    assert applied == []
    wait_until(lambda: len(registry.reports) == 1)
    assert registry.reports[0]["patch_applied"] is False and reason in registry.reports[0]["context"]["reason"]


def test_an_envelope_issued_within_the_clock_skew_is_accepted(payments, registry, make_client):
    registry.add("invalid_currency", CURRENCY, None, now=datetime.now(UTC) + timedelta(minutes=4))
    assert make_client().create_payment(amount=1, currency="XYZ", country="SN")["currency"] == "XOF"


def test_a_kill_switch_drops_the_patch_for_every_error_it_was_cached_for(payments, registry, make_client, applied):
    """One patch served for two errors; the registry's "no patch" for one of them stops it for both."""
    registry.add("invalid_currency", CURRENCY, None, patch_id="p-shared")
    registry.add("429", CURRENCY, None, patch_id="p-shared")
    client = make_client()
    client.create_payment(amount=1, currency="XYZ", country="SN")
    payments.behaviour.rate_limited_requests = 1
    client.create_payment(amount=2, currency="XOF", country="SN")  # 429 healed by the same patch
    assert [patch.id for patch in applied] == ["p-shared", "p-shared"]
    registry.patches.clear()  # switched off: the registry answers 404
    with pytest.raises(ApiError):
        client.create_payment(amount=3, currency="XYZ", country="SN")
    registry.lookup_status = 503  # then blocked
    payments.behaviour.rate_limited_requests = 1
    with pytest.raises(ApiError) as raised:
        client.create_payment(amount=4, currency="XOF", country="SN")
    assert raised.value.status == 429 and len(applied) == 2


def test_a_kill_switch_drops_every_bootstrap_patch_matching_the_error(payments, registry, make_client, tmp_path):
    """The file holds a patch by code and a less specific one by status: "no patch" ends both."""
    by_code = seal(payload_for("p-file-code", "invalid_currency", CURRENCY, None), CURRENT)
    by_status = seal(payload_for("p-file-status", "400", CURRENCY, None), CURRENT)
    path = tmp_path / "bootstrap.json"
    path.write_text(json.dumps([by_code, by_status]), encoding="utf-8")
    client = make_client(bootstrap_envelopes=str(path))
    with pytest.raises(ApiError):  # the registry answers: no patch for invalid_currency
        client.create_payment(amount=1, currency="XYZ", country="SN")
    registry.lookup_status = 503
    with pytest.raises(ApiError) as raised:
        client.create_payment(amount=2, currency="XYZ", country="SN")
    assert raised.value.code == "invalid_currency" and client.get_patch_history() == []
