"""An independent reading of the operation document: what an SDK's fixed table would accept.

Written from the issue, not from the compiler's code, so the property tests check the compiler
against it rather than against itself.
"""

from __future__ import annotations

import json
import re
import unicodedata

from selfheal.core.patchlang import canonical_json

HOSTS = {"api.molam.com", "api-backup.molam.com"}
LEVELS = {"debug", "info", "warning", "error"}


def _int(value, low, high) -> bool:
    return type(value) is int and low <= value <= high


def _url(value) -> bool:
    match = (
        re.fullmatch(r"https://([a-z0-9.-]+)(:[0-9]+)?(/[A-Za-z0-9._~/-]*)?", value) if isinstance(value, str) else None
    )
    return bool(match) and match[1] in HOSTS


SETTINGS = {
    "base_url": _url,
    "timeout_ms": lambda v: _int(v, 100, 120_000),
    "max_retries": lambda v: _int(v, 0, 10),
    "default_currency": lambda v: v is None or (isinstance(v, str) and re.fullmatch(r"[A-Z]{3}", v) is not None),
    "api_version": lambda v: (
        isinstance(v, str) and re.fullmatch(r"v[0-9]{1,3}|[0-9]{4}-[0-9]{2}-[0-9]{2}", v) is not None
    ),
    "clock_skew_seconds": lambda v: _int(v, -300, 300),
}

ACTIONS = {
    # The application's own Molam credentials only, never the SDK's own token, URL or signing secret.
    "use_fallback_credential": lambda op: (
        set(op) == {"op", "name"}
        and re.fullmatch(r"MOLAM_[A-Z0-9_]{1,58}", op["name"])
        and not op["name"].startswith("MOLAM_SELFHEAL_")
        and op["name"] != "MOLAM_SECRET_KEY"
    ),
    "use_primary_credential": lambda op: set(op) == {"op"},
    "resign_request": lambda op: set(op) == {"op", "use_server_time"} and type(op["use_server_time"]) is bool,
    "retry_with_backoff": lambda op: (
        set(op) == {"op", "attempts", "base_delay_ms", "max_delay_ms", "jitter"}
        and _int(op["attempts"], 1, 10)
        and _int(op["base_delay_ms"], 10, 10_000)
        and _int(op["max_delay_ms"], 10, 60_000)
        and op["base_delay_ms"] <= op["max_delay_ms"]
        and type(op["jitter"]) is bool
    ),
    # Only a currency and a country, as codes: no URL, e-mail or free text a patch could redirect.
    "fill_required_fields": lambda op: (
        set(op) == {"op", "fields"}
        and isinstance(op["fields"], dict)
        and 1 <= len(op["fields"])
        and set(op["fields"]) <= {"currency", "country"}
        and all(
            isinstance(v, str) and re.fullmatch(r"[A-Z]{3}" if k == "currency" else r"[A-Z]{2}", v)
            for k, v in op["fields"].items()
        )
    ),
    "clear_filled_fields": lambda op: set(op) == {"op"},
}


def _text(value) -> bool:
    return isinstance(value, str) and 0 <= len(value) <= 500 and value.isprintable()


def assert_allowed(document: dict) -> None:
    assert set(document) == {"format", "version", "operations"}
    assert (document["format"], document["version"]) == ("selfheal.operations", 1)
    operations = document["operations"]
    assert 1 <= len(operations) <= 32
    for op in operations:
        kind = op["op"]
        if kind == "set":
            assert set(op) == {"op", "setting", "value"} and SETTINGS[op["setting"]](op["value"]), op
        elif kind == "log":
            assert set(op) == {"op", "level", "message"} and op["level"] in LEVELS and _text(op["message"]), op
        else:
            assert ACTIONS[kind](op), op
    text = canonical_json(document)
    assert canonical_json(json.loads(text)) == text


def assert_visible(code: str) -> None:
    """Compiled source shows what the parser read: no control, format or separator character but
    tab, LF and the CR of a CRLF, and no lone surrogate."""
    for index, char in enumerate(code):
        if char in "\t\n" or (char == "\r" and code[index + 1 : index + 2] == "\n"):
            continue
        assert unicodedata.category(char) not in ("Cc", "Cf", "Cs", "Zl", "Zp"), (index, hex(ord(char)))
