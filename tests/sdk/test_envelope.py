"""Envelope verification: the shared vectors (tests/vectors/envelopes.json), key pinning, and the
registry's own sealing (`selfheal.core.signing`) read by the SDK."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from molam.envelope import ReplayGuard, TrustedKeys, key_id, open_envelope
from molam.errors import ConfigurationError, PatchRefused
from tests.sdk import vectors
from tests.sdk.registry_stub import payload_for
from tests.sdk.sealing import CURRENT, NEXT, TRUSTED, seal

ENVELOPES = json.loads((vectors.DIRECTORY / "envelopes.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", ENVELOPES["cases"], ids=lambda case: case["name"])
def test_envelope_vector(case):
    replay = ReplayGuard({patch_id: (seen["version"], seen["sequence"]) for patch_id, seen in case["seen"].items()})
    trusted, now = TrustedKeys(ENVELOPES["trusted"]), datetime.fromisoformat(ENVELOPES["now"])
    if case["expect"]["accepted"]:
        patch = open_envelope(case["envelope"], trusted=trusted, now=now, replay=replay)
        assert (patch.id, patch.version, patch.sequence) == (
            case["expect"]["patch_id"],
            case["expect"]["version"],
            case["expect"]["sequence"],
        )
    else:
        with pytest.raises(PatchRefused):
            open_envelope(case["envelope"], trusted=trusted, now=now, replay=replay)


PAYLOADS = json.loads((vectors.DIRECTORY / "payloads.json").read_text(encoding="utf-8"))
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("case", PAYLOADS["cases"], ids=lambda case: case["name"])
def test_payload_vector(case):
    """The grammar both SDKs read signed payloads by (sdk/node/test/envelope.test.js runs the same file)."""
    replay = ReplayGuard({patch_id: (seen["version"], seen["sequence"]) for patch_id, seen in case["seen"].items()})
    trusted, now = TrustedKeys(PAYLOADS["trusted"]), datetime.fromisoformat(PAYLOADS["now"])
    expect = case["expect"]
    if expect["accepted"]:
        patch = open_envelope(case["envelope"], trusted=trusted, now=now, replay=replay)
        micros = lambda moment: (moment - EPOCH) // timedelta(microseconds=1)  # noqa: E731
        assert {
            "accepted": True,
            "patch_id": patch.id,
            "version": patch.version,
            "sequence": patch.sequence,
            "description": patch.description,
            "issued_at_us": micros(patch.issued_at),
            "expires_at_us": micros(patch.expires_at),
        } == expect
    else:
        with pytest.raises(PatchRefused) as refused:
            open_envelope(case["envelope"], trusted=trusted, now=now, replay=replay)
        assert expect["reason"] in str(refused.value)


@pytest.mark.parametrize("name", sorted(vectors.FILES))
def test_vector_files_are_current(name):
    assert (vectors.DIRECTORY / name).read_text(encoding="utf-8") == vectors.render(vectors.FILES[name]), (
        "run `python -m tests.sdk.vectors` and review the diff"
    )


def test_replay_floor_rises_with_what_was_accepted():
    replay, trusted, now = ReplayGuard(), TrustedKeys(TRUSTED), datetime.now(UTC)
    newer = seal(
        payload_for("p1", "401", [{"op": "use_primary_credential"}], None, version="1.1.0", sequence=9), CURRENT
    )
    older = seal(
        payload_for("p1", "401", [{"op": "use_primary_credential"}], None, version="1.0.0", sequence=5), CURRENT
    )
    open_envelope(newer, trusted=trusted, now=now, replay=replay)
    with pytest.raises(PatchRefused, match="older"):
        open_envelope(older, trusted=trusted, now=now, replay=replay)
    open_envelope(newer, trusted=trusted, now=now, replay=replay)  # the same revision again is fine


def test_expiry_is_checked_against_the_given_time():
    envelope = seal(payload_for("p1", "401", [{"op": "use_primary_credential"}], None, ttl=60), CURRENT)
    later = datetime.now(UTC) + timedelta(seconds=61)
    with pytest.raises(PatchRefused, match="expired"):
        open_envelope(envelope, trusted=TrustedKeys(TRUSTED), now=later, replay=ReplayGuard())


def test_pinned_key_ids_must_match_their_keys():
    assert key_id(CURRENT.public_pem) == CURRENT.key_id
    with pytest.raises(ConfigurationError, match="does not match"):
        TrustedKeys({CURRENT.key_id: NEXT.public_pem})


def test_an_envelope_sealed_by_the_registry_code_opens_in_the_sdk():
    # The registry's signing module is the other side of this format: same bytes, same key id.
    from selfheal.core.signing import SigningKey
    from selfheal.core.signing import seal as registry_seal

    key = SigningKey.generate()
    payload = payload_for(
        "p-registry",
        "invalid_currency",
        [{"op": "set", "setting": "default_currency", "value": "XOF"}],
        [{"op": "set", "setting": "default_currency", "value": None}],
    )
    trusted = TrustedKeys({key.key_id: key.public_pem()})
    patch = open_envelope(registry_seal(payload, key=key), trusted=trusted, now=datetime.now(UTC), replay=ReplayGuard())
    assert patch.id == "p-registry" and patch.operations == payload["operations"]


def test_a_multi_megabyte_payload_is_read_whole_or_refused_cleanly():
    trusted = TrustedKeys(TRUSTED)
    sealed = seal(payload_for("p1", "401", [{"op": "use_primary_credential"}], None), CURRENT)
    garbage = {**sealed, "payload": "QUJD" * (4 * 1024 * 1024) + "!"}  # 16 MB, not base64
    with pytest.raises(PatchRefused, match="payload is not valid base64"):
        open_envelope(garbage, trusted=trusted, now=datetime.now(UTC), replay=ReplayGuard())
    description = "é" * (4_608 * 1024)  # 9 MB of UTF-8, 12 MB of base64
    large = seal(
        payload_for("p-large", "401", [{"op": "use_primary_credential"}], None, description=description), CURRENT
    )
    assert len(large["payload"]) > 12 * 1024 * 1024
    patch = open_envelope(large, trusted=trusted, now=datetime.now(UTC), replay=ReplayGuard())
    assert patch.description == description


@pytest.mark.parametrize("ttl", [10, 300, 86400], ids=["shortest", "default", "longest"])
def test_the_registry_api_writes_envelopes_inside_the_grammar(ttl):
    """`selfheal api --envelope-ttl` ranges over 10-86400 s; the API writes times to the second, in UTC."""
    from selfheal.api.app import ApiSettings, envelope_for
    from selfheal.api.catalog import ServedPatch
    from selfheal.core.signing import SigningKey

    key = SigningKey.generate()
    now = datetime(2026, 3, 1, 12, 0, 0, 987_654, tzinfo=UTC)
    operations = {"format": "selfheal.operations", "version": 1, "operations": [{"op": "use_primary_credential"}]}
    served = ServedPatch(
        id="p-grammar",
        sdk_language="python",
        error_signature="401",
        description="clé",
        severity="high",
        version="1.0.0-rc.1+build.5",
        sequence=2**53 - 1,
        row={"operations": operations, "rollback_operations": None},
        candidate=None,  # type: ignore[arg-type]  # matching is not used here
    )
    envelope = envelope_for(served, ApiSettings(database_url="", signing_key=key, envelope_ttl_seconds=ttl), now=now)
    payload = json.loads(base64.b64decode(envelope["payload"]))
    assert (payload["issued_at"], payload["expires_at"]) == (
        "2026-03-01T12:00:00+00:00",
        (now + timedelta(seconds=ttl)).isoformat(timespec="seconds"),
    )
    patch = open_envelope(envelope, trusted=TrustedKeys({key.key_id: key.public_pem()}), now=now, replay=ReplayGuard())
    assert (patch.sequence, patch.expires_at - patch.issued_at) == (2**53 - 1, timedelta(seconds=ttl))
