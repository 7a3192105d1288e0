"""Signed answers kept per (patch, sequence, rule): the bytes json.dumps gives for the reference
envelope, re-signed after a tenth of the envelope's lifetime, bounded in bytes."""

import json
from datetime import UTC, datetime

from selfheal.api.app import ApiSettings, ResponseCache, envelope_for
from selfheal.api.catalog import _served
from selfheal.core.matching import Match
from selfheal.core.signing import SigningKey, open_envelope

OPERATIONS = {"format": "selfheal.operations", "version": 1, "operations": [{"op": "use_primary_credential"}]}


def served(index: int, description: str = 'clé "fallback" ⚡'):
    return _served(
        {
            "id": f"p{index}",
            "sdk_language": "node",
            "error_signature": f"E{index}",
            "description": description,
            "severity": "high",
            "version": "1.2.0",
            "sequence": 7 + index,
            "operations": OPERATIONS,
            "rollback_operations": None,
            "updated_epoch": 0.0,
        }
    )


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_the_answer_is_the_reference_envelope_byte_for_byte_and_verifies():
    key = SigningKey.generate()
    settings = ApiSettings(database_url="", signing_key=key, envelope_ttl_seconds=300)
    clock = Clock(1_780_000_000.75)
    patch = served(1)
    match = Match(patch.candidate, "code")
    answer, expires_at = ResponseCache(settings, clock=clock).answer(patch, match)
    reference = {
        "patch": {
            "id": "p1",
            "version": "1.2.0",
            "description": patch.description,
            "severity": "high",
            "matched_by": "code",
            "rule": match.rule,
        },
        "envelope": envelope_for(patch, settings, now=datetime.fromtimestamp(clock.now, UTC)),
    }
    assert answer == json.dumps(reference).encode() and answer.endswith(b"}")  # a receipt is spliced in before it
    assert expires_at == 1_780_000_000 + 300
    payload = open_envelope(json.loads(answer)["envelope"], trusted={key.key_id: key.private_key.public_key()})
    assert (payload["issued_at"], payload["expires_at"]) == ("2026-05-28T20:26:40+00:00", "2026-05-28T20:31:40+00:00")


def test_an_answer_is_kept_for_a_tenth_of_the_lifetime_then_signed_anew():
    settings = ApiSettings(database_url="", signing_key=SigningKey.generate(), envelope_ttl_seconds=300)
    clock = Clock(1_780_000_000.0)
    answers = ResponseCache(settings, clock=clock)
    patch = served(1)
    first, expires_at = answers.answer(patch, Match(patch.candidate, "code"))
    clock.now += 29
    assert answers.answer(patch, Match(patch.candidate, "code")) == (first, expires_at)
    assert answers.answer(patch, Match(patch.candidate, "code"))[0] is first
    assert answers.answer(patch, Match(patch.candidate, "prefix"))[0] != first  # another rule, another answer
    clock.now += 2
    renewed, renewed_expiry = answers.answer(patch, Match(patch.candidate, "code"))
    assert (
        renewed != first
        and renewed_expiry == expires_at + 31
        and b'"issued_at":"2026-05-28T20:27:11+00:00"' in _payload_bytes(renewed)
    )


def test_the_answers_kept_stay_within_their_budget_in_bytes():
    settings = ApiSettings(database_url="", signing_key=SigningKey.generate())
    answers = ResponseCache(settings, max_bytes=100_000)
    for index in range(500):
        patch = served(index, description="d" * 200)
        answers.answer(patch, Match(patch.candidate, "code"))
    assert answers.bytes <= 100_000 and 0 < len(answers._answers) < 500
    assert answers.bytes == sum(len(body) + ResponseCache.ENTRY_BYTES for body, _, _ in answers._answers.values())


def _payload_bytes(answer: bytes) -> bytes:
    import base64

    return base64.b64decode(json.loads(answer)["envelope"]["payload"])
