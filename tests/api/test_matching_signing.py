import base64
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from selfheal.core.matching import Candidate, ErrorReport, PatchIndex, best_match
from selfheal.core.signing import EnvelopeError, SigningKey, canonical_json, open_envelope, seal


def c(id, signature, *, language="node", severity="medium", updated=0.0):
    return Candidate(id=id, sdk_language=language, error_signature=signature, severity=severity, updated_at=updated)


PATCHES = [
    c("status", "401"),
    c("prefix", "401 Unauth"),
    c("exact", "401 Unauthorized"),
    c("code", "ECONNREFUSED"),
    c("currency", "invalid_currency"),
    c("py", "ConnectionError", language="python"),
]


@pytest.mark.parametrize(
    ("error", "expected", "kind"),
    [
        (ErrorReport("node", "401 Unauthorized", 401), "exact", "exact"),
        (ErrorReport("node", "401 Unauthorized: key revoked", 401), "exact", "prefix"),  # longest prefix
        (ErrorReport("node", "401 Unauthenticated", 401), "prefix", "prefix"),
        (ErrorReport("node", "Unauthorized", 401), "status", "status"),
        (ErrorReport("node", "ECONNREFUSED 10.0.0.1:443"), "code", "code"),
        (ErrorReport("node", "request failed", 400, code="invalid_currency"), "currency", "code"),
        (ErrorReport("python", "ConnectionError: refused"), "py", "code"),
    ],
)
def test_most_specific_rule_wins(error, expected, kind):
    for index in (PatchIndex(PATCHES), None):
        match = index.find(error) if index else best_match(PATCHES, error)
        assert (match.candidate.id, match.kind) == (expected, kind)
        assert kind in match.rule


def test_no_match_across_languages_or_unknown_errors():
    index = PatchIndex(PATCHES)
    assert index.find(ErrorReport("python", "401 Unauthorized", 401)) is None
    assert index.find(ErrorReport("node", "ETIMEDOUT")) is None


def test_ties_are_deterministic():
    tied = [c("b", "429", severity="low"), c("a", "429", severity="low"), c("z", "429", severity="high")]
    assert best_match(tied, ErrorReport("node", "429 Too Many Requests", 429)).candidate.id == "z"
    tied = tied[:2]
    assert best_match(tied, ErrorReport("node", "x", 429)).candidate.id == "a"
    assert best_match(list(reversed(tied)), ErrorReport("node", "x", 429)).candidate.id == "a"


def test_envelope_verifies_exact_bytes_and_refuses_tampering():
    key, other = SigningKey.generate(), SigningKey.generate()
    trusted = {key.key_id: key.private_key.public_key(), other.key_id: other.private_key.public_key()}
    envelope = seal({"patch_id": "p", "version": "1.0.0", "operations": [{"op": "set", "value": "é"}]}, key=key)
    assert open_envelope(envelope, trusted=trusted)["operations"][0]["value"] == "é"
    assert base64.b64decode(envelope["payload"]) == canonical_json(json.loads(base64.b64decode(envelope["payload"])))
    tampered = dict(
        envelope, payload=base64.b64encode(base64.b64decode(envelope["payload"]).replace(b"1.0.0", b"9.0.0")).decode()
    )
    with pytest.raises(EnvelopeError):
        open_envelope(tampered, trusted=trusted)
    with pytest.raises(EnvelopeError):
        open_envelope(envelope, trusted={other.key_id: other.private_key.public_key()})
    with pytest.raises(EnvelopeError):
        open_envelope({"payload": "%%%"}, trusted=trusted)


def test_signing_key_round_trips_through_pem():
    key = SigningKey.generate()
    assert SigningKey.from_pem(key.private_pem()).key_id == key.key_id


_PIECES = ["401", "40", "4", "401 Unauth", "401 Unauthorized", "E1", "E1 x", "ECONNREFUSED", "invalid_currency", " "]


@given(
    patches=st.lists(
        st.tuples(
            st.sampled_from(["node", "python"]),
            st.lists(st.sampled_from(_PIECES), min_size=1, max_size=3).map("".join).map(str.strip).filter(bool),
            st.sampled_from(["low", "medium", "high", "critical"]),
            st.sampled_from([0.0, 1.0, 2.0]),
        ),
        max_size=12,
    ),
    message=st.lists(st.sampled_from([*_PIECES, ": key revoked", "x"]), min_size=1, max_size=4).map("".join),
    language=st.sampled_from(["node", "python"]),
    status=st.sampled_from([None, 401, 400, 4]),
    code=st.sampled_from([None, "E1", "invalid_currency", "401"]),
)
@settings(max_examples=400, deadline=None)
def test_the_index_answers_what_a_scan_of_every_patch_answers(patches, message, language, status, code):
    candidates = [
        c(f"id{number}", signature, language=lang, severity=severity, updated=updated)
        for number, (lang, signature, severity, updated) in enumerate(patches)
    ]
    error = ErrorReport(language, message, status, code)
    scanned, indexed = best_match(candidates, error), PatchIndex(candidates).find(error)
    assert (scanned and (scanned.candidate.id, scanned.kind)) == (indexed and (indexed.candidate.id, indexed.kind))
