"""`molam.testing`: the README's example, run as written, and what the double does for an
application's tests: the real client healing through a fake registry, no network."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest

from molam import ApiError, MolamClient, MolamConnectionError, MolamTimeout
from molam.testing import FakeMolam

README = Path(__file__).resolve().parents[2] / "sdk" / "python" / "README.md"


@pytest.fixture()
def no_network(monkeypatch):
    """Any socket the code under test opens fails the test: the double needs none."""

    def refuse(*args, **kwargs):
        raise AssertionError("molam.testing opened a network connection")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def readme_example() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Testing your code") :]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "the README has a Python example in its testing section"
    return match.group(1)


def test_the_readme_example_runs_as_written(no_network):
    namespace: dict = {}
    exec(compile(readme_example(), str(README), "exec"), namespace)  # noqa: S102 - our own README
    tests = [value for name, value in namespace.items() if name.startswith("test_") and callable(value)]
    assert len(tests) == 1
    for test in tests:
        test()


def test_a_timeout_heals_without_waiting_and_charges_once(no_network):
    with FakeMolam() as fake:
        fake.payments.fail(timeout=True, times=1)
        fake.registry.add_patch(
            "Timeout",
            [{"op": "set", "setting": "timeout_ms", "value": 30000}],
            rollback=[{"op": "set", "setting": "timeout_ms", "value": 10000}],
        )
        client = fake.client()
        payment = client.create_payment(amount=1200, currency="XOF", country="SN")
        assert client.timeout == 30.0 and list(fake.payments.payments) == [payment["id"]]
        assert fake.registry.lookups[0]["code"] == "Timeout"


def test_an_unreachable_host_heals_by_moving_to_the_backup_api(no_network):
    with FakeMolam() as fake:
        fake.payments.fail(unreachable=True, when=lambda request: request.host == "api.molam.com")
        fake.registry.add_patch(
            "ConnectionError",
            [{"op": "set", "setting": "base_url", "value": "https://api-backup.molam.com"}],
            rollback=[{"op": "set", "setting": "base_url", "value": "https://api.molam.com"}],
        )
        client = fake.client()
        client.create_payment(amount=1, currency="XOF", country="SN")
        assert [request.host for request in fake.payments.requests] == ["api.molam.com", "api-backup.molam.com"]


def test_a_patch_that_does_not_heal_is_rolled_back_and_reported(no_network):
    with FakeMolam() as fake:
        fake.payments.fail(status=400, code="invalid_currency", message="currency not supported")
        patch_id = fake.registry.add_patch(
            "invalid_currency",
            [{"op": "set", "setting": "default_currency", "value": "XOF"}],
            rollback=[{"op": "set", "setting": "default_currency", "value": None}],
        )
        client = fake.client()
        with pytest.raises(ApiError) as raised:
            client.create_payment(amount=1, currency="XYZ", country="SN")
        assert (raised.value.code, raised.value.message) == ("invalid_currency", "currency not supported")
        assert client.default_currency is None
        [report] = fake.reports()
        assert (report["patch_id"], report["success"], report["rollback_triggered"]) == (patch_id, False, True)


def test_429_with_retry_after_and_a_backoff_patch(no_network):
    with FakeMolam() as fake:
        fake.payments.fail(status=429, code="rate_limited", retry_after=0, times=2)
        fake.registry.add_patch(
            "429",
            [{"op": "retry_with_backoff", "attempts": 3, "base_delay_ms": 10, "max_delay_ms": 100, "jitter": False}],
        )
        client = fake.client()
        assert client.create_payment(amount=1, currency="XOF", country="SN")["status"] == "succeeded"
        assert len(fake.payments.requests) == 3


def test_no_patch_for_the_error_raises_it_and_the_miss_is_looked_up(no_network):
    with FakeMolam() as fake:
        fake.payments.fail(unreachable=True)
        with pytest.raises(MolamConnectionError):
            fake.client().get_payment("pay_1")
        assert fake.registry.lookups[0]["error"].startswith("ConnectionError: ")


def test_kill_switch_and_registry_outage(no_network):
    with FakeMolam() as fake:
        fake.payments.fail(status=401, code="api_key_revoked", when=lambda request: request.api_key == "pk_test_fake")
        patch_id = fake.registry.add_patch(
            "api_key_revoked",
            [{"op": "use_fallback_credential", "name": "MOLAM_FALLBACK_API_KEY"}],
            rollback=[{"op": "use_primary_credential"}],
        )
        fallback = {"MOLAM_FALLBACK_API_KEY": "pk_fallback"}
        fake.client(fallback_credentials=fallback).create_payment(amount=1, currency="XOF", country="SN")
        fake.registry.unavailable = True  # a registry outage: a new client has no verified patch to fall back on
        with pytest.raises(ApiError):
            fake.client(fallback_credentials=fallback).create_payment(amount=1, currency="XOF", country="SN")
        fake.registry.unavailable = False
        fake.registry.remove_patch(patch_id)
        with pytest.raises(ApiError):
            fake.client(fallback_credentials=fallback).create_payment(amount=1, currency="XOF", country="SN")


def test_the_fake_registry_writes_bootstrap_files(tmp_path, no_network):
    with FakeMolam() as fake:
        fake.payments.fail(timeout=True, times=1)
        fake.registry.add_patch("Timeout", [{"op": "set", "setting": "timeout_ms", "value": 30000}])
        path = tmp_path / "bootstrap.json"
        path.write_text(json.dumps({"envelopes": fake.registry.envelopes()}), encoding="utf-8")
        fake.registry.unavailable = True
        client = fake.client(bootstrap_envelopes=str(path))
        client.create_payment(amount=1, currency="XOF", country="SN")
        assert client.timeout == 30.0


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda fake: fake.registry.add_patch("401", [{"op": "exec", "code": "1"}]), None),
        (lambda fake: fake.registry.add_patch("401", []), "operations must be a list of 1 to 32 operations"),
        (lambda fake: fake.registry.add_patch("", [{"op": "use_primary_credential"}]), "error_signature"),
        (lambda fake: fake.payments.fail(), "exactly one of"),
        (lambda fake: fake.payments.fail(status=200), "HTTP error status"),
    ],
    ids=[
        "unknown_operation_is_caught_when_applied",
        "no_operations",
        "empty_signature",
        "no_failure_kind",
        "success_status",
    ],
)
def test_declarations_the_double_cannot_serve_fail_at_once(call, message):
    with FakeMolam() as fake:
        if message is None:  # well-formed but unknown: the client refuses it, as it would a served one
            call(fake)
            fake.payments.fail(status=401, code="api_key_revoked")
            with pytest.raises(ApiError):
                fake.client().get_payment("pay_1")
            assert fake.reports()[0]["context"]["reason"] == "operations[0]: unknown operation 'exec'"
            return
        with pytest.raises(ValueError, match=message):
            call(fake)


def test_fake_clients_are_real_clients():
    with FakeMolam() as fake:
        client = fake.client()
        assert isinstance(client, MolamClient) and client.self_healing
        assert fake.registry.trusted_keys == {fake.registry.key_id: fake.registry.public_key_pem}


def test_a_declared_timeout_is_a_molam_timeout_without_a_patch(no_network):
    with FakeMolam() as fake:
        fake.payments.fail(timeout=True)
        with pytest.raises(MolamTimeout):
            fake.client().get_payment("pay_1")
