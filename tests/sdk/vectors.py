"""The shared test vectors (tests/vectors/*.json), for this SDK and the coming Node SDK.

Run `python -m tests.sdk.vectors` to rewrite them; a test checks the files equal what this
module produces, so a change of format is always deliberate. Expected results are written
out here by hand, never computed by an SDK.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

from tests.sdk.sealing import CURRENT, NEXT, TRUSTED, UNKNOWN, canonical, seal

DIRECTORY = Path(__file__).resolve().parents[1] / "vectors"
NOW = "2026-03-01T12:00:00+00:00"


def _payload(**changes: object) -> dict:
    payload = {
        "patch_id": "python-invalid-currency-xof", "version": "1.2.0", "sequence": 42, "sdk_language": "python",
        "error_signature": "invalid_currency", "description": "Correction vers devise valide (XOF par défaut)",
        "severity": "medium",
        "operations": {"format": "selfheal.operations", "version": 1, "operations": [
            {"op": "set", "setting": "default_currency", "value": "XOF"},
            {"op": "log", "level": "warning", "message": "⚡ invalid currency: using XOF"}]},
        "rollback_operations": {"format": "selfheal.operations", "version": 1, "operations": [
            {"op": "set", "setting": "default_currency", "value": None}]},
        "issued_at": "2026-03-01T11:58:00+00:00", "expires_at": "2026-03-01T12:03:00+00:00",
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
    return {**envelope, "signatures": [{**envelope["signatures"][0], "signature": base64.b64encode(bytes(raw)).decode()}]}


def envelopes() -> dict:
    accepted = {"accepted": True, "patch_id": "python-invalid-currency-xof", "version": "1.2.0", "sequence": 42}
    refused = {"accepted": False}
    cases = [
        ("valid", "signed by the current key", seal(_payload(), CURRENT), {}, accepted),
        ("valid_next_key", "signed by the next key (rotation)", seal(_payload(), NEXT), {}, accepted),
        ("valid_second_signature", "an unknown key's signature, then the current key's",
         seal(_payload(), UNKNOWN, CURRENT), {}, accepted),
        ("same_sequence_again", "the same revision served again is fine",
         seal(_payload(), CURRENT), {"python-invalid-currency-xof": {"version": "1.2.0", "sequence": 42}}, accepted),
        ("newer_than_seen", "a newer version and sequence than seen",
         seal(_payload(), CURRENT), {"python-invalid-currency-xof": {"version": "1.1.9", "sequence": 7}}, accepted),
        ("tampered_payload", "payload bytes changed after signing", _tampered_payload(), {}, refused),
        ("tampered_signature", "one bit of the signature flipped", _tampered_signature(), {}, refused),
        ("unknown_key", "signed only by a key nobody pinned", seal(_payload(), UNKNOWN), {}, refused),
        ("expired", "expires_at is before now",
         seal(_payload(expires_at="2026-03-01T11:59:59+00:00"), CURRENT), {}, refused),
        ("replayed_older_sequence", "a lower sequence than one already seen for this patch",
         seal(_payload(), CURRENT), {"python-invalid-currency-xof": {"version": "1.2.0", "sequence": 43}}, refused),
        ("replayed_older_version", "a lower version than one already seen for this patch",
         seal(_payload(), CURRENT), {"python-invalid-currency-xof": {"version": "1.10.0", "sequence": 1}}, refused),
        ("other_language", "a Node patch is not for the Python SDK",
         seal(_payload(sdk_language="node"), CURRENT), {}, refused),
        ("wrong_format", "unknown envelope format", {**seal(_payload(), CURRENT), "format": "selfheal.patch.v0"},
         {}, refused),
        ("no_signatures", "no signature at all", {**seal(_payload(), CURRENT), "signatures": []}, {}, refused),
        ("payload_not_base64", "payload is not strict base64", {**seal(_payload(), CURRENT), "payload": "e30=!"},
         {}, refused),
        ("signed_garbage", "a trusted key signed bytes that are not a payload",
         {"format": "selfheal.patch.v1", "payload": base64.b64encode(b"[1,2]").decode(),
          "signatures": [CURRENT.signature(b"[1,2]")]}, {}, refused),
    ]
    return {
        "description": "Signed patch envelopes. Verify with `trusted` (key id → PEM) at `now`, with the "
                       "replay floor `seen` (patch id → highest version and sequence accepted).",
        "trusted": TRUSTED,
        "now": NOW,
        "cases": [{"name": name, "description": description, "seen": seen, "envelope": envelope, "expect": expect}
                  for name, description, envelope, seen, expect in cases],
    }


INITIAL_STATE = {
    "base_url": "https://api.molam.com", "timeout_ms": 10000, "max_retries": 0, "default_currency": None,
    "api_version": None, "clock_skew_seconds": 0, "credential": None,
    "backoff": {"base_delay_ms": 200, "max_delay_ms": 5000, "jitter": True}, "filled_fields": {},
}
CONTEXT = {"now": 1772366400.0, "server_time": 1772366520.0, "credentials": ["MOLAM_FALLBACK_API_KEY"],
           "allowed_hosts": ["api.molam.com", "api-backup.molam.com"]}


def _document(*operations: dict) -> dict:
    return {"format": "selfheal.operations", "version": 1, "operations": list(operations)}


def operations() -> dict:
    applied = [
        ("set_base_url", [{"op": "set", "setting": "base_url", "value": "https://api-backup.molam.com"}],
         {"base_url": "https://api-backup.molam.com"}, []),
        ("set_timeout_ms", [{"op": "set", "setting": "timeout_ms", "value": 30000},
                            {"op": "log", "level": "warning", "message": "⚡ timeout raised to 30 s"}],
         {"timeout_ms": 30000}, [["warning", "⚡ timeout raised to 30 s"]]),
        ("set_max_retries", [{"op": "set", "setting": "max_retries", "value": 3}], {"max_retries": 3}, []),
        ("set_default_currency", [{"op": "set", "setting": "default_currency", "value": "XOF"}],
         {"default_currency": "XOF"}, []),
        ("set_api_version", [{"op": "set", "setting": "api_version", "value": "2024-01-31"}],
         {"api_version": "2024-01-31"}, []),
        ("set_clock_skew_seconds", [{"op": "set", "setting": "clock_skew_seconds", "value": -12}],
         {"clock_skew_seconds": -12}, []),
        ("use_fallback_credential", [{"op": "use_fallback_credential", "name": "MOLAM_FALLBACK_API_KEY"}],
         {"credential": "MOLAM_FALLBACK_API_KEY"}, []),
        ("resign_request_server_time", [{"op": "resign_request", "use_server_time": True}],
         {"clock_skew_seconds": 120}, []),
        ("resign_request_own_time", [{"op": "resign_request", "use_server_time": False}], {}, []),
        ("retry_with_backoff", [{"op": "retry_with_backoff", "attempts": 5, "base_delay_ms": 100,
                                 "max_delay_ms": 2000, "jitter": False}],
         {"max_retries": 5, "backoff": {"base_delay_ms": 100, "max_delay_ms": 2000, "jitter": False}}, []),
        ("fill_required_fields", [{"op": "fill_required_fields", "fields": {"currency": "XOF", "country": "SN"}}],
         {"filled_fields": {"currency": "XOF", "country": "SN"}}, []),
        ("log_levels", [{"op": "log", "level": level, "message": f"{level} line"}
                        for level in ("debug", "info", "warning", "error")],
         {}, [[level, f"{level} line"] for level in ("debug", "info", "warning", "error")]),
    ]
    cases = [{"name": name, "document": _document(*ops), "expect": {"state": {**INITIAL_STATE, **changes}, "logs": logs}}
             for name, ops, changes, logs in applied]
    # Rollback-style operations start from a patched state.
    patched = {**INITIAL_STATE, "credential": "MOLAM_FALLBACK_API_KEY", "filled_fields": {"country": "SN"},
               "default_currency": "XOF", "clock_skew_seconds": 120}
    cases += [
        {"name": "use_primary_credential", "initial_state": patched, "document": _document({"op": "use_primary_credential"}),
         "expect": {"state": {**patched, "credential": None}, "logs": []}},
        {"name": "clear_filled_fields", "initial_state": patched, "document": _document({"op": "clear_filled_fields"}),
         "expect": {"state": {**patched, "filled_fields": {}}, "logs": []}},
        {"name": "set_default_currency_null", "initial_state": patched,
         "document": _document({"op": "set", "setting": "default_currency", "value": None}),
         "expect": {"state": {**patched, "default_currency": None}, "logs": []}},
    ]
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
        ("backoff_base_above_max", [{"op": "retry_with_backoff", "attempts": 3, "base_delay_ms": 500,
                                     "max_delay_ms": 100, "jitter": True}]),
        ("skew_beyond_bounds", [{"op": "set", "setting": "clock_skew_seconds", "value": 301}]),
        ("field_name_not_snake_case", [{"op": "fill_required_fields", "fields": {"Country": "SN"}}]),
        ("field_currency_not_iso", [{"op": "fill_required_fields", "fields": {"currency": "francs"}}]),
        ("unknown_log_level", [{"op": "log", "level": "critical", "message": "x"}]),
        ("log_bidi_control", [{"op": "log", "level": "info", "message": "pay\u202eevil"}]),
    ]
    cases += [{"name": name, "document": _document(*ops), "expect": {"refused": True}} for name, ops in refused]
    cases += [
        {"name": "no_operations", "document": _document(), "expect": {"refused": True}},
        {"name": "wrong_format", "document": {**_document({"op": "clear_filled_fields"}), "format": "other"},
         "expect": {"refused": True}},
        {"name": "wrong_version", "document": {**_document({"op": "clear_filled_fields"}), "version": 2},
         "expect": {"refused": True}},
        {"name": "server_time_unknown", "context": {**CONTEXT, "server_time": None},
         "document": _document({"op": "resign_request", "use_server_time": True}), "expect": {"refused": True}},
        {"name": "server_skew_beyond_bounds", "context": {**CONTEXT, "server_time": CONTEXT["now"] + 301},
         "document": _document({"op": "resign_request", "use_server_time": True}), "expect": {"refused": True}},
    ]
    return {
        "description": "Operation documents applied to a client state. Each case starts from its "
                       "`initial_state` (default: the top-level one) with its `context` (default: the top-level "
                       "one): `now` and `server_time` in epoch seconds, configured credential names, hosts a "
                       "patch may move base_url to. `expect` is the whole state and the log lines after "
                       "applying, or `refused`: the whole document is refused and the state is unchanged.",
        "initial_state": INITIAL_STATE,
        "context": CONTEXT,
        "cases": cases,
    }


FILES = {"envelopes.json": envelopes, "operations.json": operations}


def render(build) -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    DIRECTORY.mkdir(exist_ok=True)
    for name, build in FILES.items():
        (DIRECTORY / name).write_text(render(build), encoding="utf-8")
        print(f"wrote tests/vectors/{name}")
