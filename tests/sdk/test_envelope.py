"""Envelope verification: the shared vectors (tests/vectors/envelopes.json), key pinning, and the
registry's own sealing (`selfheal.core.signing`) read by the SDK."""

from __future__ import annotations

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
