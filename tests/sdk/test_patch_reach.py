"""What a signed patch cannot reach, end to end: the real payments server over HTTP, the registry
stub serving envelopes signed in the test, and the process environment holding other secrets.

A patch cannot make the SDK send another of the process's secrets (or the SDK's own registry
token) as its API key, and the fields it fills go into the retried call only, never into the
calls after it, refunds included. A refusal leaves the caller with its own error and is reported.
"""

from __future__ import annotations

import json
import time

import pytest

from molam import ApiError, ConfigurationError
from tests.sdk.registry_stub import TOKEN

SECRETS = {
    "AWS_SECRET_ACCESS_KEY": "aws-secret-value-0001",
    "NPM_TOKEN": "npm-token-value-0002",
    "MOLAM_SELFHEAL_TOKEN": TOKEN,
    "MOLAM_SECRET_KEY": "sk_test_secret",
}


def wait_until(condition, *, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def sent_keys(payments) -> set[str]:
    return {request["headers"].get("authorization", "") for request in payments.requests}


@pytest.mark.parametrize("name", sorted(SECRETS))
def test_a_patch_cannot_send_another_secret_as_the_api_key(payments, registry, make_client, monkeypatch, name):
    for variable, value in SECRETS.items():
        monkeypatch.setenv(variable, value)
    monkeypatch.setenv("MOLAM_FALLBACK_API_KEY", "pk_fallback")
    payments.behaviour.revoked_keys = {"pk_primary"}
    patch_id = registry.add(
        "401", [{"op": "use_fallback_credential", "name": name}], [{"op": "use_primary_credential"}]
    )
    client = make_client(fallback_credentials=None)  # the default: environment variables by the MOLAM_ rule
    with pytest.raises(ApiError) as caught:
        client.create_payment(amount=5000, currency="XOF", country="SN")
    assert caught.value.status == 401  # the caller's own error, as without a patch
    assert sent_keys(payments) == {"Bearer pk_primary"}
    assert client.state.credential is None and client.get_patch_history() == []
    wait_until(lambda: len(registry.reports) == 1)
    [report] = registry.reports
    assert (report["patch_id"], report["patch_applied"], report["success"]) == (patch_id, False, False)
    assert report["context"]["reason"] == (
        f"operations[0] (use_fallback_credential): {name} is not a fallback credential this client allows "
        "(names starting MOLAM_, except MOLAM_SELFHEAL_* and MOLAM_SECRET_KEY)"
    )


def test_the_default_rule_reads_the_fallback_key_from_the_environment(payments, registry, make_client, monkeypatch):
    monkeypatch.setenv("MOLAM_FALLBACK_API_KEY", "pk_fallback")
    payments.behaviour.revoked_keys = {"pk_primary"}
    registry.add("401", [{"op": "use_fallback_credential", "name": "MOLAM_FALLBACK_API_KEY"}])
    client = make_client(fallback_credentials=None)
    assert client.create_payment(amount=1, currency="XOF", country="SN")["status"] == "succeeded"
    assert payments.requests[-1]["headers"]["authorization"] == "Bearer pk_fallback"


def test_a_configured_list_narrows_the_names(payments, registry, make_client, monkeypatch):
    monkeypatch.setenv("MOLAM_FALLBACK_API_KEY", "pk_fallback")
    payments.behaviour.revoked_keys = {"pk_primary"}
    registry.add("401", [{"op": "use_fallback_credential", "name": "MOLAM_FALLBACK_API_KEY"}])
    client = make_client(fallback_credentials=("MOLAM_BACKUP_*",))
    with pytest.raises(ApiError):
        client.create_payment(amount=1, currency="XOF", country="SN")
    assert sent_keys(payments) == {"Bearer pk_primary"}
    wait_until(lambda: len(registry.reports) == 1)
    assert registry.reports[0]["context"]["reason"].endswith(
        "MOLAM_FALLBACK_API_KEY is not a fallback credential this client allows (fallback credentials: MOLAM_BACKUP_*)"
    )


def test_the_option_refuses_the_sdks_own_token(make_client):
    with pytest.raises(ConfigurationError) as caught:
        make_client(fallback_credentials={"MOLAM_SELFHEAL_TOKEN": TOKEN})
    assert caught.value.option == "fallback_credentials"
    assert caught.value.reason == (
        "MOLAM_SELFHEAL_TOKEN is the SDK's own setting or signing secret, never a fallback credential"
    )


def bodies(payments, path: str) -> list[dict]:
    return [json.loads(request["body"]) for request in payments.requests if request["path"] == path]


def test_filled_fields_go_into_the_retried_call_only(payments, registry, make_client):
    registry.add("400", [{"op": "fill_required_fields", "fields": {"country": "SN", "currency": "XOF"}}])
    client = make_client()
    payment = client.create_payment(amount=100, currency="EUR")
    assert (payment["country"], payment["currency"]) == ("SN", "EUR")  # the caller's currency wins
    # The next call is sent as the caller wrote it: it fails and heals again on its own.
    client.create_payment(amount=200, currency="EUR")
    client.refund(payment["id"], amount=50)
    assert [body.get("country") for body in bodies(payments, "/v1/payments")] == [None, "SN", None, "SN"]
    assert bodies(payments, "/v1/refunds") == [{"payment_id": payment["id"], "amount": 50}]
    assert len(registry.lookups) == 2


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        (
            {"country": "SN", "callback_url": "https://api.molam.com/callback"},
            "field callback_url is not one a patch may fill (only: currency, country)",
        ),
        (
            {"country": "SN", "receipt_email": "attacker@example.com"},
            "field receipt_email is not one a patch may fill (only: currency, country)",
        ),
        ({"country": "Senegal"}, "field country: must be an ISO 3166-1 alpha-2 country code"),
    ],
)
def test_a_patch_filling_other_fields_is_refused_and_reported(payments, registry, make_client, fields, reason):
    patch_id = registry.add("400", [{"op": "fill_required_fields", "fields": fields}])
    client = make_client()
    with pytest.raises(ApiError) as caught:
        client.create_payment(amount=100, currency="XOF")
    assert caught.value.code == "missing_required_field"
    assert bodies(payments, "/v1/payments") == [{"amount": 100, "currency": "XOF"}]  # no retry was sent
    wait_until(lambda: len(registry.reports) == 1)
    assert registry.reports[0]["patch_id"] == patch_id
    assert registry.reports[0]["context"]["reason"] == f"operations[0] (fill_required_fields): {reason}"
