"""The shared test vectors (tests/vectors/*.json), for this SDK and the coming Node SDK.

Run `python -m tests.sdk.vectors` to rewrite them; a test checks the files equal what this
module produces, so a change of format is always deliberate. Expected results are written
out here by hand, never computed by an SDK.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

from tests.sdk import hostile_operations
from tests.sdk.payload_vectors import payloads
from tests.sdk.sealing import CURRENT, NEXT, TRUSTED, UNKNOWN, canonical, seal

DIRECTORY = Path(__file__).resolve().parents[1] / "vectors"
NOW = "2026-03-01T12:00:00+00:00"


def _payload(**changes: object) -> dict:
    payload = {
        "patch_id": "python-invalid-currency-xof",
        "version": "1.2.0",
        "sequence": 42,
        "sdk_language": "python",
        "error_signature": "invalid_currency",
        "description": "Correction vers devise valide (XOF par défaut)",
        "severity": "medium",
        "operations": {
            "format": "selfheal.operations",
            "version": 1,
            "operations": [
                {"op": "set", "setting": "default_currency", "value": "XOF"},
                {"op": "log", "level": "warning", "message": "⚡ invalid currency: using XOF"},
            ],
        },
        "rollback_operations": {
            "format": "selfheal.operations",
            "version": 1,
            "operations": [{"op": "set", "setting": "default_currency", "value": None}],
        },
        "issued_at": "2026-03-01T11:58:00+00:00",
        "expires_at": "2026-03-01T12:03:00+00:00",
    }
    return {**payload, **changes}


def _tampered_payload() -> dict:
    envelope = seal(_payload(), CURRENT)
    data = canonical(_payload()).replace(b'"value":"XOF"', b'"value":"USD"')
    return {**envelope, "payload": base64.b64encode(data).decode()}


def _tampered_signature() -> dict:
    envelope = seal(_payload(), CURRENT)
    raw = bytearray(base64.b64decode(envelope["signatures"][0]["signature"]))
    raw[0] ^= 1
    return {
        **envelope,
        "signatures": [{**envelope["signatures"][0], "signature": base64.b64encode(bytes(raw)).decode()}],
    }


def envelopes() -> dict:
    accepted = {"accepted": True, "patch_id": "python-invalid-currency-xof", "version": "1.2.0", "sequence": 42}
    refused = {"accepted": False}
    cases = [
        ("valid", "signed by the current key", seal(_payload(), CURRENT), {}, accepted),
        ("valid_next_key", "signed by the next key (rotation)", seal(_payload(), NEXT), {}, accepted),
        (
            "valid_second_signature",
            "an unknown key's signature, then the current key's",
            seal(_payload(), UNKNOWN, CURRENT),
            {},
            accepted,
        ),
        (
            "same_sequence_again",
            "the same revision served again is fine",
            seal(_payload(), CURRENT),
            {"python-invalid-currency-xof": {"version": "1.2.0", "sequence": 42}},
            accepted,
        ),
        (
            "newer_than_seen",
            "a newer version and sequence than seen",
            seal(_payload(), CURRENT),
            {"python-invalid-currency-xof": {"version": "1.1.9", "sequence": 7}},
            accepted,
        ),
        ("tampered_payload", "payload bytes changed after signing", _tampered_payload(), {}, refused),
        ("tampered_signature", "one bit of the signature flipped", _tampered_signature(), {}, refused),
        ("unknown_key", "signed only by a key nobody pinned", seal(_payload(), UNKNOWN), {}, refused),
        (
            "expired",
            "expires_at is before now",
            seal(_payload(expires_at="2026-03-01T11:59:59+00:00"), CURRENT),
            {},
            refused,
        ),
        (
            "replayed_older_sequence",
            "a lower sequence than one already seen for this patch",
            seal(_payload(), CURRENT),
            {"python-invalid-currency-xof": {"version": "1.2.0", "sequence": 43}},
            refused,
        ),
        (
            "replayed_older_version",
            "a lower version than one already seen for this patch",
            seal(_payload(), CURRENT),
            {"python-invalid-currency-xof": {"version": "1.10.0", "sequence": 1}},
            refused,
        ),
        (
            "other_language",
            "a Node patch is not for the Python SDK",
            seal(_payload(sdk_language="node"), CURRENT),
            {},
            refused,
        ),
        (
            "wrong_format",
            "unknown envelope format",
            {**seal(_payload(), CURRENT), "format": "selfheal.patch.v0"},
            {},
            refused,
        ),
        ("no_signatures", "no signature at all", {**seal(_payload(), CURRENT), "signatures": []}, {}, refused),
        (
            "payload_not_base64",
            "payload is not strict base64",
            {**seal(_payload(), CURRENT), "payload": "e30=!"},
            {},
            refused,
        ),
        (
            "signed_garbage",
            "a trusted key signed bytes that are not a payload",
            {
                "format": "selfheal.patch.v1",
                "payload": base64.b64encode(b"[1,2]").decode(),
                "signatures": [CURRENT.signature(b"[1,2]")],
            },
            {},
            refused,
        ),
    ]
    return {
        "description": "Signed patch envelopes. Verify with `trusted` (key id → PEM) at `now`, with the "
        "replay floor `seen` (patch id → highest version and sequence accepted).",
        "trusted": TRUSTED,
        "now": NOW,
        "cases": [
            {"name": name, "description": description, "seen": seen, "envelope": envelope, "expect": expect}
            for name, description, envelope, seen, expect in cases
        ],
    }


INITIAL_STATE = {
    "base_url": "https://api.molam.com",
    "timeout_ms": 10000,
    "max_retries": 0,
    "default_currency": None,
    "api_version": None,
    "clock_skew_seconds": 0,
    "credential": None,
    "backoff": {"base_delay_ms": 200, "max_delay_ms": 5000, "jitter": True},
}
CONTEXT = {
    "now": 1772366400.0,
    "server_time": 1772366520.0,
    # The names that have a value (in the environment, or the option's mapping); the names a
    # patch may use are `fallback_credentials`' (null: the default rule).
    "credentials": hostile_operations.SET_CREDENTIALS,
    "fallback_credentials": None,
    "allowed_hosts": ["api.molam.com", "api-backup.molam.com"],
}


def _document(*operations: dict) -> dict:
    return {"format": "selfheal.operations", "version": 1, "operations": list(operations)}


def operations() -> dict:
    applied = [
        (
            "set_base_url",
            [{"op": "set", "setting": "base_url", "value": "https://api-backup.molam.com"}],
            {"base_url": "https://api-backup.molam.com"},
            [],
        ),
        (
            "set_timeout_ms",
            [
                {"op": "set", "setting": "timeout_ms", "value": 30000},
                {"op": "log", "level": "warning", "message": "⚡ timeout raised to 30 s"},
            ],
            {"timeout_ms": 30000},
            [["warning", "⚡ timeout raised to 30 s"]],
        ),
        ("set_max_retries", [{"op": "set", "setting": "max_retries", "value": 3}], {"max_retries": 3}, []),
        (
            "set_default_currency",
            [{"op": "set", "setting": "default_currency", "value": "XOF"}],
            {"default_currency": "XOF"},
            [],
        ),
        (
            "set_api_version",
            [{"op": "set", "setting": "api_version", "value": "2024-01-31"}],
            {"api_version": "2024-01-31"},
            [],
        ),
        (
            "set_clock_skew_seconds",
            [{"op": "set", "setting": "clock_skew_seconds", "value": -12}],
            {"clock_skew_seconds": -12},
            [],
        ),
        (
            "use_fallback_credential",
            [{"op": "use_fallback_credential", "name": "MOLAM_FALLBACK_API_KEY"}],
            {"credential": "MOLAM_FALLBACK_API_KEY"},
            [],
        ),
        (
            "resign_request_server_time",
            [{"op": "resign_request", "use_server_time": True}],
            {"clock_skew_seconds": 120},
            [],
        ),
        ("resign_request_own_time", [{"op": "resign_request", "use_server_time": False}], {}, []),
        (
            "retry_with_backoff",
            [{"op": "retry_with_backoff", "attempts": 5, "base_delay_ms": 100, "max_delay_ms": 2000, "jitter": False}],
            {"max_retries": 5, "backoff": {"base_delay_ms": 100, "max_delay_ms": 2000, "jitter": False}},
            [],
        ),
        (
            "fill_required_fields",
            [{"op": "fill_required_fields", "fields": {"currency": "XOF", "country": "SN"}}],
            {},
            [],
        ),
        (
            "log_levels",
            [
                {"op": "log", "level": level, "message": f"{level} line"}
                for level in ("debug", "info", "warning", "error")
            ],
            {},
            [[level, f"{level} line"] for level in ("debug", "info", "warning", "error")],
        ),
    ]
    fills = {"fill_required_fields": {"currency": "XOF", "country": "SN"}}
    cases = [
        {
            "name": name,
            "document": _document(*ops),
            "expect": {"state": {**INITIAL_STATE, **changes}, "logs": logs, "fill": fills.get(name, {})},
        }
        for name, ops, changes, logs in applied
    ]
    # Rollback-style operations start from a patched state.
    patched = {
        **INITIAL_STATE,
        "credential": "MOLAM_FALLBACK_API_KEY",
        "default_currency": "XOF",
        "clock_skew_seconds": 120,
    }
    cases += [
        {
            "name": "use_primary_credential",
            "initial_state": patched,
            "document": _document({"op": "use_primary_credential"}),
            "expect": {"state": {**patched, "credential": None}, "logs": [], "fill": {}},
        },
        {
            "name": "clear_filled_fields",
            "initial_state": patched,
            "document": _document({"op": "clear_filled_fields"}),
            "expect": {"state": patched, "logs": [], "fill": {}},
        },
        {
            "name": "set_default_currency_null",
            "initial_state": patched,
            "document": _document({"op": "set", "setting": "default_currency", "value": None}),
            "expect": {"state": {**patched, "default_currency": None}, "logs": [], "fill": {}},
        },
    ]
    cases += hostile_operations.accepted(INITIAL_STATE, CONTEXT)
    refused = [
        ("unknown_operation", [{"op": "set", "setting": "timeout_ms", "value": 30000}, {"op": "exec", "code": "1"}]),
        ("unknown_setting", [{"op": "set", "setting": "secret_key", "value": "x"}]),
        ("extra_argument", [{"op": "use_primary_credential", "now": True}]),
        ("missing_argument", [{"op": "retry_with_backoff", "attempts": 3, "base_delay_ms": 100, "max_delay_ms": 200}]),
        ("timeout_out_of_bounds", [{"op": "set", "setting": "timeout_ms", "value": 99}]),
        ("boolean_is_not_a_number", [{"op": "set", "setting": "max_retries", "value": True}]),
        ("base_url_not_https", [{"op": "set", "setting": "base_url", "value": "http://api.molam.com"}]),
        ("base_url_host_not_allowed", [{"op": "set", "setting": "base_url", "value": "https://evil.example"}]),
        ("credential_not_configured", [{"op": "use_fallback_credential", "name": "MOLAM_OTHER_KEY"}]),
        ("credential_value_not_name", [{"op": "use_fallback_credential", "name": "sk_live_abcdef123456"}]),
        (
            "backoff_base_above_max",
            [{"op": "retry_with_backoff", "attempts": 3, "base_delay_ms": 500, "max_delay_ms": 100, "jitter": True}],
        ),
        ("skew_beyond_bounds", [{"op": "set", "setting": "clock_skew_seconds", "value": 301}]),
        ("field_name_not_snake_case", [{"op": "fill_required_fields", "fields": {"Country": "SN"}}]),
        ("field_currency_not_iso", [{"op": "fill_required_fields", "fields": {"currency": "francs"}}]),
        ("unknown_log_level", [{"op": "log", "level": "critical", "message": "x"}]),
        ("log_bidi_control", [{"op": "log", "level": "info", "message": "pay\u202eevil"}]),
    ]
    cases += [{"name": name, "document": _document(*ops), "expect": {"refused": True}} for name, ops in refused]
    cases += [
        {"name": "no_operations", "document": _document(), "expect": {"refused": True}},
        {
            "name": "wrong_format",
            "document": {**_document({"op": "clear_filled_fields"}), "format": "other"},
            "expect": {"refused": True},
        },
        {
            "name": "wrong_version",
            "document": {**_document({"op": "clear_filled_fields"}), "version": 2},
            "expect": {"refused": True},
        },
        {
            "name": "server_time_unknown",
            "context": {**CONTEXT, "server_time": None},
            "document": _document({"op": "resign_request", "use_server_time": True}),
            "expect": {"refused": True},
        },
        {
            "name": "server_skew_beyond_bounds",
            "context": {**CONTEXT, "server_time": CONTEXT["now"] + 301},
            "document": _document({"op": "resign_request", "use_server_time": True}),
            "expect": {"refused": True},
        },
    ]
    cases += hostile_operations.refused(CONTEXT)
    return {
        "description": "Operation documents applied to a client state. Each case starts from its "
        "`initial_state` (default: the top-level one) with its `context` (default: the top-level "
        "one): `now` and `server_time` in epoch seconds, the credential names that have a value, "
        "the client's `fallback_credentials` option (null: its default), hosts a patch may move "
        "base_url to. `expect` is the whole state, the log lines and the request fields filled in "
        "the retried call only (`fill`) after applying, or `refused`: the whole document is "
        "refused (for `reason`, when given, exactly) and the state is unchanged. "
        "`credential_options`: what each SDK makes of a `fallback_credentials` option: the "
        "ConfigurationError's reason, or the names it allows and refuses.",
        "initial_state": INITIAL_STATE,
        "context": CONTEXT,
        "cases": cases,
        "credential_options": hostile_operations.credential_options(),
    }


# --- Matching: which held patch answers an error (bootstrap patches, the fake registry) ----------


def matching() -> dict:
    patches = [
        {"id": "p-exact", "error_signature": "401 Unauthorized: api_key_revoked", "severity": "low", "sequence": 1},
        {"id": "p-code", "error_signature": "api_key_revoked", "severity": "medium", "sequence": 2},
        {"id": "p-prefix-short", "error_signature": "401 Unauth", "severity": "critical", "sequence": 3},
        {"id": "p-prefix-long", "error_signature": "401 Unauthorized", "severity": "low", "sequence": 4},
        {"id": "p-status", "error_signature": "401", "severity": "critical", "sequence": 5},
        {"id": "p-429-a", "error_signature": "429", "severity": "high", "sequence": 6},
        {"id": "p-429-b", "error_signature": "429", "severity": "high", "sequence": 9},
        {"id": "p-timeout-b", "error_signature": "Timeout", "severity": "medium", "sequence": 7},
        {"id": "p-timeout-a", "error_signature": "Timeout", "severity": "medium", "sequence": 7},
        {"id": "p-currency-critical", "error_signature": "invalid_currency", "severity": "critical", "sequence": 1},
        {"id": "p-currency-low", "error_signature": "invalid_currency", "severity": "low", "sequence": 8},
        {"id": "p-econnrefused", "error_signature": "ECONNREFUSED", "severity": "high", "sequence": 10},
    ]

    def case(
        name: str, message: str, status: int | None, code: str | None, patch_id: str | None, kind: str | None = None
    ) -> dict:
        return {
            "name": name,
            "error": {"message": message, "status": status, "code": code},
            "expect": {"patch_id": patch_id, "kind": kind} if patch_id else None,
        }

    cases = [
        case("exact_wins", "401 Unauthorized: api_key_revoked", 401, "api_key_revoked", "p-exact", "exact"),
        case(
            "exact_ignores_outer_whitespace",
            "  401 Unauthorized: api_key_revoked \n",
            401,
            "api_key_revoked",
            "p-exact",
            "exact",
        ),
        case(
            "code_before_prefix", "401 Unauthorized: api_key_revoked (again)", 401, "api_key_revoked", "p-code", "code"
        ),
        case("longest_prefix", "401 Unauthorized: invalid_api_key", 401, "invalid_api_key", "p-prefix-long", "prefix"),
        case("status_when_nothing_else", "Unauthorized", 401, None, "p-status", "status"),
        case("a_leading_number_is_no_code", "401 xyz", None, None, "p-status", "prefix"),
        case(
            "higher_sequence_breaks_a_tie",
            "429 Too Many Requests: rate_limited",
            429,
            "rate_limited",
            "p-429-b",
            "prefix",
        ),
        case(
            "smaller_id_breaks_a_tie", "Timeout: no complete answer within 2 s", None, "Timeout", "p-timeout-a", "code"
        ),
        case(
            "severity_before_sequence",
            "400 Bad Request: invalid_currency",
            400,
            "invalid_currency",
            "p-currency-critical",
            "code",
        ),
        case(
            "first_word_without_a_code",
            "ECONNREFUSED: 127.0.0.1: connect refused",
            None,
            None,
            "p-econnrefused",
            "code",
        ),
        case("no_patch", "404 Not Found: not_found", 404, "not_found", None),
    ]
    return {
        "description": "Which of the patches a client holds answers an error, by the registry's matching rules "
        "(exact, code, prefix, status; then longer signature, higher severity, higher sequence, "
        "smaller id). `expect` is null when none does.",
        "patches": patches,
        "cases": cases,
    }


# --- Configuration: what the constructors refuse, with the same reasons in both SDKs ------------


def _ec_public_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.derive_private_key(0x5EED, ec.SECP256R1())  # deterministic: the file regenerates byte for byte
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def configuration() -> dict:
    # A private key pasted as a trusted key is each SDK's own test (a private key in a committed
    # file would trip secret scanners, test key or not).
    whitespace = "contains whitespace or a control character (a newline copied from a file?)"
    no_keys = (
        "is empty, but self-healing with a selfheal_token needs the registry's public key pinned to verify "
        "patches (`selfheal keygen` prints it); or turn self-healing off"
    )
    keys = {CURRENT.key_id: CURRENT.public_pem}

    def refused(name: str, options: dict, option: str, reason: str, *, prefix: bool = False) -> dict:
        return {
            "name": name,
            "options": options,
            "expect": {"option": option, ("reason_prefix" if prefix else "reason"): reason},
        }

    def accepted(name: str, options: dict, self_healing: bool) -> dict:
        return {"name": name, "options": options, "expect": {"self_healing": self_healing}}

    cases = [
        refused("api_key_empty", {"api_key": ""}, "api_key", "is not set or empty"),
        refused("api_key_missing", {"api_key": None}, "api_key", "is not set or empty"),
        refused("api_key_not_a_string", {"api_key": 42}, "api_key", "must be a string"),
        refused("api_key_trailing_newline", {"api_key": "pk_test\n"}, "api_key", whitespace),
        refused("api_key_inner_space", {"api_key": "pk test"}, "api_key", whitespace),
        refused("api_key_non_ascii", {"api_key": "pk_tést"}, "api_key", "contains a non-ASCII character"),
        refused("api_key_too_long", {"api_key": "k" * 1025}, "api_key", "is longer than 1024 characters"),
        refused("secret_key_empty", {"secret_key": ""}, "secret_key", "is not set or empty"),
        refused("secret_key_tab", {"secret_key": "sk_test\t"}, "secret_key", whitespace),
        refused(
            "base_url_without_scheme",
            {"base_url": "api.molam.com"},
            "base_url",
            "must be an http:// or https:// URL with a host",
        ),
        refused(
            "trusted_keys_not_a_mapping",
            {"trusted_keys": ["pem"]},
            "trusted_keys",
            "must map key ids to public keys (PEM)",
        ),
        refused("trusted_key_not_text", {"trusted_keys": {"k1": 42}}, "trusted_keys", 'key "k1": must be PEM text'),
        refused(
            "trusted_key_not_pem",
            {"trusted_keys": {"k1": "not a key"}},
            "trusted_keys",
            'key "k1": is not a PEM public key',
        ),
        refused(
            "trusted_key_not_ed25519",
            {"trusted_keys": {"k1": _ec_public_pem()}},
            "trusted_keys",
            'key "k1": is not an Ed25519 public key',
        ),
        refused(
            "trusted_key_id_mismatch",
            {"trusted_keys": {NEXT.key_id: CURRENT.public_pem}},
            "trusted_keys",
            f'key "{NEXT.key_id}": the id does not match the key (its id is {CURRENT.key_id})',
        ),
        refused("token_without_keys", {"selfheal_token": "dev-token"}, "trusted_keys", no_keys),
        refused(
            "keys_without_token",
            {"trusted_keys": keys},
            "selfheal_token",
            "is not set (nor MOLAM_SELFHEAL_TOKEN), but self-healing with trusted_keys needs a developer token "
            "of the registry (`selfheal token create`) or bootstrap_envelopes; or turn self-healing off",
        ),
        refused(
            "bootstrap_without_keys",
            {"bootstrap_envelopes": "bootstrap.json"},
            "trusted_keys",
            "is empty, but bootstrap_envelopes need the registry's public key pinned to verify them "
            "(`selfheal keygen` prints it); or turn self-healing off",
        ),
        refused(
            "token_with_a_space", {"selfheal_token": "dev token", "trusted_keys": keys}, "selfheal_token", whitespace
        ),
        refused(
            "selfheal_url_without_scheme",
            {"selfheal_token": "dev-token", "trusted_keys": keys, "selfheal_url": "devportal:8140"},
            "selfheal_url",
            "must be an http:// or https:// URL with a host",
        ),
        refused(
            "bootstrap_file_missing",
            {"trusted_keys": keys, "bootstrap_envelopes": "no-such-bootstrap.json"},
            "bootstrap_envelopes",
            "cannot read no-such-bootstrap.json: ",
            prefix=True,
        ),
        accepted("nothing_of_self_healing", {}, False),
        accepted(
            "self_healing_off_ignores_the_rest", {"enable_self_healing": False, "selfheal_token": "dev-token"}, False
        ),
        accepted(
            "token_and_keys",
            {"selfheal_token": "dev-token", "trusted_keys": keys, "selfheal_url": "https://devportal.example:8140"},
            True,
        ),
    ]
    return {
        "description": "Client options and what construction does with them. Every case starts from "
        '{"api_key": "pk_test", "secret_key": "sk_test"} with `options` over it, in an environment '
        "without MOLAM_ variables. `expect`: the ConfigurationError's option and reason (or "
        "reason_prefix), or whether self-healing is on. Names are the Python SDK's; the Node SDK's "
        "tests rename options in both (api_key → apiKey, …).",
        "cases": cases,
    }


# --- Bootstrap files: what a client keeps from a file of envelopes ------------------------------


def bootstrap() -> dict:
    def payload(patch_id: str, language: str, **changes: object) -> dict:
        return _payload(patch_id=patch_id, sdk_language=language, **changes)

    def answer(envelope: dict, patch_id: str) -> dict:  # as POST /api/dev/self-heal returns it
        return {"patch": {"id": patch_id, "version": "1.2.0", "matched_by": "code"}, "envelope": envelope}

    tampered = seal(payload("python-tampered", "python"), CURRENT)
    data = base64.b64decode(tampered["payload"]).replace(b'"value":"XOF"', b'"value":"USD"')
    entries = [
        seal(payload("python-a", "python"), CURRENT),
        answer(seal(payload("python-b", "python", error_signature="401"), NEXT), "python-b"),
        seal(payload("node-a", "node"), CURRENT),
        answer(seal(payload("node-b", "node", error_signature="401"), NEXT), "node-b"),
        {**seal(payload("python-unsigned", "python"), CURRENT), "signatures": []},
        {**tampered, "payload": base64.b64encode(data).decode()},
        seal(payload("python-expired", "python", expires_at="2026-03-01T11:59:59+00:00"), CURRENT),
        seal(payload("node-expired", "node", expires_at="2026-03-01T11:59:59+00:00"), CURRENT),
        seal(payload("node-unknown-key", "node"), UNKNOWN),
        "not an envelope",
        seal(payload("python-a", "python", sequence=41), CURRENT),
        seal(payload("node-a", "node", sequence=41), CURRENT),
    ]
    language_python, language_node = "not python", "not node"
    return {
        "description": "A bootstrap file (`file`, written as is) loaded with `trusted` at `now`. `expect`, per SDK: "
        "the patch ids kept, and each skipped entry's index with a part of its reason.",
        "trusted": TRUSTED,
        "now": NOW,
        "file": {"envelopes": entries},
        "expect": {
            "python": {
                "patches": ["python-a", "python-b"],
                "skipped": [
                    [2, language_python],
                    [3, language_python],
                    [4, "signatures"],
                    [5, "no valid signature"],
                    [6, "expired"],
                    [7, language_python],
                    [8, "no valid signature"],
                    [9, "not a selfheal.patch.v1 envelope"],
                    [10, "sequence 41 is lower than 42"],
                    [11, language_python],
                ],
            },
            "node": {
                "patches": ["node-a", "node-b"],
                "skipped": [
                    [0, language_node],
                    [1, language_node],
                    [4, "signatures"],
                    [5, "no valid signature"],
                    [6, language_node],
                    [7, "expired"],
                    [8, "no valid signature"],
                    [9, "not a selfheal.patch.v1 envelope"],
                    [10, language_node],
                    [11, "sequence 41 is lower than 42"],
                ],
            },
        },
    }


# --- Proxies: which proxy a request goes through, from the environment --------------------------


def proxy() -> dict:
    proxy_a, proxy_b = "http://proxy-a.internal:3128", "http://proxy-b.internal:8080"

    def case(name: str, environment: dict, url: str, expect: str | None) -> dict:
        return {"name": name, "environment": environment, "url": url, "expect": expect}

    cases = [
        case("https_proxy_for_https", {"HTTPS_PROXY": proxy_a}, "https://api.molam.com/v1/payments", proxy_a),
        case("http_proxy_for_http", {"HTTP_PROXY": proxy_b}, "http://127.0.0.1:8140/api/dev/self-heal", proxy_b),
        case("http_proxy_not_for_https", {"HTTP_PROXY": proxy_b}, "https://api.molam.com/v1/payments", None),
        case("no_proxy_variables", {}, "https://api.molam.com/v1/payments", None),
        case("lower_case_wins", {"HTTPS_PROXY": proxy_a, "https_proxy": proxy_b}, "https://api.molam.com/", proxy_b),
        case(
            "empty_lower_case_turns_it_off", {"HTTPS_PROXY": proxy_a, "https_proxy": ""}, "https://api.molam.com/", None
        ),
        case(
            "no_proxy_exact_host",
            {"HTTPS_PROXY": proxy_a, "NO_PROXY": "api.molam.com"},
            "https://api.molam.com/v1/payments",
            None,
        ),
        case(
            "no_proxy_domain_suffix",
            {"HTTPS_PROXY": proxy_a, "NO_PROXY": ".molam.com"},
            "https://api-backup.molam.com/",
            None,
        ),
        case(
            "no_proxy_domain_without_dot",
            {"HTTPS_PROXY": proxy_a, "no_proxy": "molam.com"},
            "https://api.molam.com/",
            None,
        ),
        case(
            "no_proxy_is_not_a_substring",
            {"HTTPS_PROXY": proxy_a, "NO_PROXY": "molam.com"},
            "https://notmolam.com/",
            proxy_a,
        ),
        case(
            "no_proxy_list_with_spaces",
            {"HTTPS_PROXY": proxy_a, "NO_PROXY": " example.org , API.Molam.com "},
            "https://api.molam.com/",
            None,
        ),
        case("no_proxy_star", {"HTTPS_PROXY": proxy_a, "NO_PROXY": "*"}, "https://api.molam.com/", None),
        case(
            "no_proxy_host_and_port",
            {"HTTPS_PROXY": proxy_a, "NO_PROXY": "127.0.0.1:8443"},
            "https://127.0.0.1:8443/",
            None,
        ),
        case(
            "no_proxy_other_port",
            {"HTTPS_PROXY": proxy_a, "NO_PROXY": "127.0.0.1:8443"},
            "https://127.0.0.1:9443/",
            proxy_a,
        ),
        case(
            "cgi_ignores_upper_case_http_proxy",
            {"HTTP_PROXY": proxy_a, "REQUEST_METHOD": "GET"},
            "http://127.0.0.1:8140/",
            None,
        ),
        case(
            "cgi_keeps_lower_case_http_proxy",
            {"http_proxy": proxy_b, "REQUEST_METHOD": "GET"},
            "http://127.0.0.1:8140/",
            proxy_b,
        ),
    ]
    return {
        "description": "The proxy a request to `url` goes through when the process environment is `environment` "
        "(HTTPS_PROXY, HTTP_PROXY, NO_PROXY, as the standard library reads them; lower-case names "
        "win), or null for a direct connection.",
        "cases": cases,
    }


FILES = {
    "envelopes.json": envelopes,
    "operations.json": operations,
    "matching.json": matching,
    "configuration.json": configuration,
    "bootstrap.json": bootstrap,
    "proxy.json": proxy,
    "payloads.json": payloads,
}


def render(build) -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    DIRECTORY.mkdir(exist_ok=True)
    for name, build in FILES.items():
        (DIRECTORY / name).write_text(render(build), encoding="utf-8")
        print(f"wrote tests/vectors/{name}")
