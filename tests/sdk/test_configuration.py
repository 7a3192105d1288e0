"""A bad option raises ConfigurationError at construction, naming the option and the reason:
the shared cases (tests/vectors/configuration.json, run by the Node SDK too) and the rest."""

from __future__ import annotations

import json
import logging

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import molam
from molam import ConfigurationError, MolamClient
from tests.sdk import vectors
from tests.sdk.sealing import CURRENT, TRUSTED

CONFIGURATION = json.loads((vectors.DIRECTORY / "configuration.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", CONFIGURATION["cases"], ids=lambda case: case["name"])
def test_configuration_vector(case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative bootstrap paths resolve in an empty directory
    options = {"api_key": "pk_test", "secret_key": "sk_test", **case["options"]}
    expect = case["expect"]
    if "self_healing" in expect:
        client = MolamClient(**options)
        assert client.self_healing is expect["self_healing"]
        client.close()
        return
    with pytest.raises(ConfigurationError) as raised:
        MolamClient(**options)
    assert raised.value.option == expect["option"]
    if "reason" in expect:
        assert raised.value.reason == expect["reason"]
    else:
        assert raised.value.reason.startswith(expect["reason_prefix"]), raised.value.reason
    assert str(raised.value) == f"{raised.value.option}: {raised.value.reason}"


def test_configuration_error_is_exported_and_a_value_error():
    assert molam.ConfigurationError is ConfigurationError and issubclass(ConfigurationError, ValueError)


def test_a_private_key_pinned_by_mistake_is_refused_without_being_used():
    private_pem = (
        Ed25519PrivateKey.generate()
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .decode()
    )
    with pytest.raises(ConfigurationError) as raised:
        MolamClient(api_key="pk", secret_key="sk", selfheal_token="t", trusted_keys={"k1": private_pem})
    assert (
        str(raised.value)
        == 'trusted_keys: key "k1": is a private key: pin the public key (`selfheal keygen` prints it)'
    )


def test_the_token_from_the_environment_is_named_as_such(monkeypatch):
    monkeypatch.setenv("MOLAM_SELFHEAL_TOKEN", "dev-token")
    with pytest.raises(ConfigurationError) as raised:
        MolamClient(api_key="pk", secret_key="sk")  # a token in the environment, no pinned key
    assert raised.value.option == "trusted_keys" and "with a MOLAM_SELFHEAL_TOKEN" in raised.value.reason
    monkeypatch.setenv("MOLAM_SELFHEAL_TOKEN", "dev token")
    with pytest.raises(ConfigurationError) as raised:
        MolamClient(api_key="pk", secret_key="sk", trusted_keys=TRUSTED)
    assert raised.value.option == "MOLAM_SELFHEAL_TOKEN"


def test_the_registry_url_from_the_environment_is_named_as_such(monkeypatch):
    monkeypatch.setenv("MOLAM_SELFHEAL_URL", "devportal:8140")
    with pytest.raises(ConfigurationError) as raised:
        MolamClient(api_key="pk", secret_key="sk", selfheal_token="t", trusted_keys=TRUSTED)
    assert (raised.value.option, raised.value.reason) == (
        "MOLAM_SELFHEAL_URL",
        "must be an http:// or https:// URL with a host",
    )


@pytest.mark.parametrize("timeout", [0, -1, 121, "10", True])
def test_timeout_out_of_bounds(timeout):
    with pytest.raises(ConfigurationError) as raised:
        MolamClient(api_key="pk", secret_key="sk", timeout=timeout, enable_self_healing=False)
    assert str(raised.value) == "timeout: must be between 0 and 120 seconds"


def test_nothing_of_self_healing_configured_only_warns_as_the_runbook_example_expects(caplog):
    with caplog.at_level(logging.WARNING, logger="molam"):
        client = MolamClient(api_key="pk", secret_key="sk", enable_self_healing=True)
    assert not client.self_healing
    assert "self-healing disabled: it needs selfheal_token and trusted_keys" in caplog.text


def test_the_key_id_helper_names_what_is_wrong():
    with pytest.raises(ConfigurationError, match="public key: is not a PEM public key"):
        molam.key_id("-----BEGIN PUBLIC KEY-----")
    assert molam.key_id(CURRENT.public_pem) == CURRENT.key_id
