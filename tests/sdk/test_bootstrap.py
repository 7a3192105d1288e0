"""`bootstrap_envelopes=PATH`: a client starts with the signed patches of a file and heals
without reaching the registry; the file's envelopes are verified like served ones, and the
bad ones are skipped with a logged reason (the shared file: tests/vectors/bootstrap.json)."""

from __future__ import annotations

import json
import logging
import socket
import time
from datetime import datetime

import pytest

from molam import ApiError, ConfigurationError, MolamClient
from molam.bootstrap import load_bootstrap
from molam.envelope import ReplayGuard, TrustedKeys
from tests.sdk import vectors
from tests.sdk.registry_stub import payload_for
from tests.sdk.sealing import CURRENT, TRUSTED, UNKNOWN, seal

BOOTSTRAP = json.loads((vectors.DIRECTORY / "bootstrap.json").read_text(encoding="utf-8"))
FALLBACK = [{"op": "use_fallback_credential", "name": "MOLAM_FALLBACK_API_KEY"}]
PRIMARY = [{"op": "use_primary_credential"}]


def write(path, document) -> str:
    path.write_text(json.dumps(document), encoding="utf-8")
    return str(path)


def closed_port_url() -> str:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{closed.getsockname()[1]}"  # bound, never listening: refused


def test_bootstrap_vector(tmp_path, caplog):
    path = write(tmp_path / "bootstrap.json", BOOTSTRAP["file"])
    with caplog.at_level(logging.WARNING, logger="molam"):
        loaded = load_bootstrap(
            path,
            trusted=TrustedKeys(BOOTSTRAP["trusted"]),
            replay=ReplayGuard(),
            now=datetime.fromisoformat(BOOTSTRAP["now"]),
        )
    expect = BOOTSTRAP["expect"]["python"]
    assert [patch.id for patch in loaded.patches] == expect["patches"]
    assert [int(reason.split(":")[0].removeprefix("entry ")) for reason in loaded.skipped] == [
        index for index, _ in expect["skipped"]
    ]
    for reason, (index, part) in zip(loaded.skipped, expect["skipped"]):
        assert part in reason, (index, reason)
        # Each skip is logged with the file and the entry: an operator finds the bad envelope.
        assert f"bootstrap_envelopes {path}: entry {index} skipped: " in caplog.text


def test_a_client_starts_healed_from_the_file_without_any_registry(payments, tmp_path, applied):
    payments.behaviour.revoked_keys = {"pk_primary"}
    path = write(
        tmp_path / "bootstrap.json",
        [
            seal(
                payload_for("p-401", "401", FALLBACK, PRIMARY, description="Injection clé API fallback sur 401"),
                CURRENT,
            )
        ],
    )
    client = MolamClient(
        api_key="pk_primary",
        secret_key=payments.behaviour.secret_key,
        base_url=payments.url,
        trusted_keys=TRUSTED,
        bootstrap_envelopes=path,
        on_patch_applied=applied.append,
        fallback_credentials={"MOLAM_FALLBACK_API_KEY": "pk_fallback"},
    )
    assert client.self_healing
    assert client.create_payment(amount=5000, currency="XOF", country="SN")["status"] == "succeeded"
    assert [(patch.id, patch.success) for patch in client.get_patch_history()] == [("p-401", True)]
    assert applied == client.get_patch_history() and client.pending_reports == 0  # no registry: nothing to report
    client.close()


def test_the_file_stands_in_while_the_registry_is_unreachable(payments, tmp_path, make_client):
    payments.behaviour.revoked_keys = {"pk_primary"}
    path = write(
        tmp_path / "bootstrap.json",
        {
            "envelopes": [
                {"patch": {"id": "p-401"}, "envelope": seal(payload_for("p-401", "401", FALLBACK, PRIMARY), CURRENT)}
            ]
        },
    )
    client = make_client(selfheal_url=closed_port_url(), bootstrap_envelopes=path)
    assert client.create_payment(amount=5000, currency="XOF", country="SN")["status"] == "succeeded"
    assert client.state.credential == "MOLAM_FALLBACK_API_KEY"


def test_a_reachable_registry_wins_over_the_file(payments, registry, tmp_path, make_client, caplog):
    payments.behaviour.revoked_keys = {"pk_primary"}
    path = write(tmp_path / "bootstrap.json", [seal(payload_for("p-401", "401", FALLBACK, PRIMARY), CURRENT)])
    client = make_client(bootstrap_envelopes=path)
    # The registry has no patch for this error any more (switched off since the file was written).
    with caplog.at_level(logging.WARNING, logger="molam"), pytest.raises(ApiError):
        client.create_payment(amount=5000, currency="XOF", country="SN")
    assert len(registry.lookups) == 1 and client.get_patch_history() == []
    assert (
        "the registry has no patch for 401 Unauthorized: api_key_revoked: bootstrap patch p-401 dropped" in caplog.text
    )
    # ...and the file's patch stays dropped when the registry is away afterwards.
    registry.lookup_status = 503
    with pytest.raises(ApiError):
        client.create_payment(amount=5000, currency="XOF", country="SN")


def test_a_served_patch_is_used_before_the_file(payments, registry, tmp_path, make_client):
    path = write(
        tmp_path / "bootstrap.json",
        [
            seal(
                payload_for(
                    "p-file", "invalid_currency", [{"op": "set", "setting": "default_currency", "value": "EUR"}], None
                ),
                CURRENT,
            )
        ],
    )
    registry.add("invalid_currency", [{"op": "set", "setting": "default_currency", "value": "XOF"}], None)
    client = make_client(bootstrap_envelopes=path)
    assert client.create_payment(amount=1, currency="XYZ", country="SN")["currency"] == "XOF"
    assert [patch.id for patch in client.get_patch_history()] == ["p-invalid_currency"]


def test_bad_envelopes_are_skipped_and_the_client_starts_with_the_good_ones(payments, tmp_path, caplog):
    payments.behaviour.revoked_keys = {"pk_primary"}
    good = seal(payload_for("p-401", "401", FALLBACK, PRIMARY), CURRENT)
    path = write(
        tmp_path / "bootstrap.json",
        [
            {**good, "signatures": []},  # unsigned
            seal(payload_for("p-unknown", "401", FALLBACK, PRIMARY), UNKNOWN),  # signed by a key nobody pinned
            seal(payload_for("p-expired", "401", FALLBACK, PRIMARY, ttl=-1), CURRENT),
            good,
        ],
    )
    with caplog.at_level(logging.INFO, logger="molam"):
        client = MolamClient(
            api_key="pk_primary",
            secret_key=payments.behaviour.secret_key,
            base_url=payments.url,
            trusted_keys=TRUSTED,
            bootstrap_envelopes=path,
            fallback_credentials={"MOLAM_FALLBACK_API_KEY": "pk_fallback"},
        )
    assert f"bootstrap_envelopes {path}: entry 0 skipped: an envelope carries 1 to 4 signatures" in caplog.text
    assert f"bootstrap_envelopes {path}: entry 1 skipped: no valid signature from a trusted key" in caplog.text
    assert f"bootstrap_envelopes {path}: entry 2 skipped: patch p-expired envelope expired at" in caplog.text
    assert f"bootstrap_envelopes {path}: 1 verified patches, 3 skipped" in caplog.text
    assert client.create_payment(amount=1, currency="XOF", country="SN")["status"] == "succeeded"
    assert [patch.id for patch in client.get_patch_history()] == ["p-401"]


def test_a_bootstrap_patch_is_not_used_once_its_envelope_expired(payments, tmp_path, caplog):
    payments.behaviour.revoked_keys = {"pk_primary"}
    payments.behaviour.clock_tolerance = 10_000  # the client's clock moves on; signatures stay valid
    path = write(tmp_path / "bootstrap.json", [seal(payload_for("p-401", "401", FALLBACK, PRIMARY, ttl=300), CURRENT)])
    offset = [0.0]
    client = MolamClient(
        api_key="pk_primary",
        secret_key=payments.behaviour.secret_key,
        base_url=payments.url,
        trusted_keys=TRUSTED,
        bootstrap_envelopes=path,
        clock=lambda: time.time() + offset[0],
        fallback_credentials={"MOLAM_FALLBACK_API_KEY": "pk_fallback"},
    )
    offset[0] = 301.0
    with caplog.at_level(logging.WARNING, logger="molam"), pytest.raises(ApiError):
        client.create_payment(amount=1, currency="XOF", country="SN")
    assert "bootstrap patch p-401 expired at" in caplog.text and client.get_patch_history() == []


@pytest.mark.parametrize(
    "content, reason",
    [
        ("{not json", "is not JSON: "),
        ('{"patches": []}', 'must hold a list of envelopes, or an object with an "envelopes" list'),
        ('{"envelopes": {}}', 'must hold a list of envelopes, or an object with an "envelopes" list'),
        ("42", 'must hold a list of envelopes, or an object with an "envelopes" list'),
    ],
    ids=["not_json", "no_envelopes", "envelopes_not_a_list", "a_number"],
)
def test_a_file_that_is_not_a_bootstrap_file_is_a_configuration_error(tmp_path, content, reason):
    path = tmp_path / "bootstrap.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigurationError) as raised:
        MolamClient(api_key="pk", secret_key="sk", trusted_keys=TRUSTED, bootstrap_envelopes=str(path))
    assert raised.value.option == "bootstrap_envelopes"
    assert raised.value.reason.startswith(f"{path} {reason}"), raised.value.reason


def test_an_unreadable_file_or_a_path_that_is_not_one_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigurationError) as raised:
        MolamClient(api_key="pk", secret_key="sk", trusted_keys=TRUSTED, bootstrap_envelopes=str(tmp_path))
    assert str(raised.value) == f"bootstrap_envelopes: cannot read {tmp_path}: Is a directory"
    with pytest.raises(ConfigurationError, match="bootstrap_envelopes: must be a file path"):
        MolamClient(api_key="pk", secret_key="sk", trusted_keys=TRUSTED, bootstrap_envelopes=42)


def test_the_file_sets_the_replay_floor(payments, registry, tmp_path, make_client):
    # A served envelope older than the file's for the same patch is a replay, and refused.
    path = write(
        tmp_path / "bootstrap.json",
        [
            seal(
                payload_for(
                    "p-currency",
                    "invalid_currency",
                    [{"op": "set", "setting": "default_currency", "value": "XOF"}],
                    None,
                    sequence=9,
                ),
                CURRENT,
            )
        ],
    )
    registry.add(
        "invalid_currency",
        [{"op": "set", "setting": "default_currency", "value": "EUR"}],
        None,
        patch_id="p-currency",
        sequence=8,
    )
    client = make_client(bootstrap_envelopes=path)
    with pytest.raises(ApiError):
        client.create_payment(amount=1, currency="XYZ", country="SN")
    assert client.default_currency is None
