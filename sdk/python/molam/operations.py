"""The fixed table of what a patch may do, and how an operation document is applied.

A patch never runs code. Its operations name a setting or an action; each name is looked up
in the tables below, which hold the only functions a patch can reach, and each argument is
checked against the same bounds the registry's compiler used (checked again here: a signature
says who sent a patch, not that it is sane). Any unknown operation, setting, argument or
out-of-bounds value refuses the whole document, and since the state is immutable a refused
document leaves the client exactly as it was.

Document, version 1 (the registry's `selfheal.core.patchlang.operations`):

    {"format": "selfheal.operations", "version": 1, "operations": [
        {"op": "set", "setting": "timeout_ms", "value": 30000},
        {"op": "log", "level": "warning", "message": "⚡ timeout raised to 30 s"}]}
"""

from __future__ import annotations

import datetime
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from molam.config import CREDENTIAL_NAME, DEFAULT_FALLBACK_CREDENTIALS, FallbackCredentials
from molam.errors import PatchRefused
from molam.state import Backoff, ClientState

FORMAT = "selfheal.operations"
FORMAT_VERSION = 1
MAX_OPERATIONS = 32
APPLY_BUDGET_SECONDS = 5.0  # the runbook: a patch must not block more than 5 s


@dataclass(frozen=True)
class ApplyContext:
    """What an operation may consult besides the state: all of it chosen by the client."""

    now: float  # the client's clock, epoch seconds
    server_time: float | None = None  # the failing answer's Date header, epoch seconds
    has_credential: Callable[[str], bool] = lambda name: False  # a value is configured for the name
    allowed_hosts: frozenset[str] = frozenset()
    credentials: FallbackCredentials = DEFAULT_FALLBACK_CREDENTIALS  # the names a patch may use


@dataclass(frozen=True)
class Applied:
    state: ClientState
    logs: tuple[tuple[str, str], ...]  # (level, message), emitted once the whole document applied
    fill: Mapping[str, Any] = field(default_factory=dict)  # request fields to fill in the retried call only


Check = Callable[[Any, ApplyContext], Any]


# --- Bounds (mirroring the registry compiler's) -----------------------------------------------

_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_URL = re.compile(r"https://(?P<host>[a-z0-9.-]+)(?::(?P<port>[1-9][0-9]{0,4}))?(?P<path>/[A-Za-z0-9._~/-]*)?")
_API_VERSION = re.compile(r"v[1-9][0-9]{0,2}|[0-9]{4}-[0-9]{2}-[0-9]{2}")
_FIELD_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_CURRENCY = re.compile(r"[A-Z]{3}")
_COUNTRY = re.compile(r"[A-Z]{2}")


def text(limit: int) -> Check:
    def check(value: Any, context: ApplyContext) -> str:
        if not isinstance(value, str) or len(value) > limit:
            raise ValueError(f"must be a string of at most {limit} characters")
        if not value.isprintable() or _BIDI.search(value):
            raise ValueError("contains a control, invisible or bidirectional character")
        return value

    return check


def integer(low: int, high: int) -> Check:
    def check(value: Any, context: ApplyContext) -> int:
        # bool is an int in Python, never in a document.
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise ValueError(f"must be a whole number between {low} and {high}")
        return value

    return check


def boolean(value: Any, context: ApplyContext) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def currency(*, nullable: bool) -> Check:
    def check(value: Any, context: ApplyContext) -> str | None:
        if value is None and nullable:
            return None
        if not isinstance(value, str) or not _CURRENCY.fullmatch(value):
            raise ValueError("must be an ISO 4217 currency code")
        return value

    return check


def https_url(value: Any, context: ApplyContext) -> str:
    match = _URL.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError("must be https://host[:port][/path]")
    if match["port"] is not None and int(match["port"]) > 65535:
        raise ValueError("port must be between 1 and 65535")
    if match["host"] not in context.allowed_hosts:
        raise ValueError(f"host {match['host']} is not one this client allows")
    if "//" in (match["path"] or "") or "/../" in (match["path"] or "") + "/":
        raise ValueError("path must not contain // or ..")
    return value


def api_version(value: Any, context: ApplyContext) -> str:
    if not isinstance(value, str) or not _API_VERSION.fullmatch(value):
        raise ValueError("must look like v2 or 2024-01-31")
    if value[0] != "v":
        datetime.date.fromisoformat(value)  # ValueError if not a calendar date
    return value


def credential_name(value: Any, context: ApplyContext) -> str:
    if not isinstance(value, str) or not CREDENTIAL_NAME.fullmatch(value):
        raise ValueError("must be a credential name such as MOLAM_FALLBACK_API_KEY")
    if not context.credentials.allows(value):
        raise ValueError(f"{value} is not a fallback credential this client allows ({context.credentials.describe()})")
    if not context.has_credential(value):
        raise ValueError(f"no credential named {value} is configured")
    return value


def country(value: Any, context: ApplyContext) -> str:
    if not isinstance(value, str) or not _COUNTRY.fullmatch(value):
        raise ValueError("must be an ISO 3166-1 alpha-2 country code")
    return value


# The request fields a patch may fill, each with its type (the compiler's FILLABLE_FIELDS): no URL,
# e-mail or free text, so a patch cannot send a payment's callback or receipt elsewhere.
FILLABLE_FIELDS: Mapping[str, Check] = {"currency": currency(nullable=False), "country": country}


def field_defaults(value: Any, context: ApplyContext) -> dict[str, Any]:
    if not isinstance(value, dict) or not value:
        raise ValueError("must map at least one field name to its default")
    # Every name first, then every value: the same refusal whatever the order of the keys.
    if not all(_FIELD_NAME.fullmatch(name) for name in value):
        raise ValueError("field names must be snake_case ASCII")
    for name in value:
        if name not in FILLABLE_FIELDS:
            raise ValueError(f"field {name} is not one a patch may fill (only: {', '.join(FILLABLE_FIELDS)})")
    for name, default in value.items():
        try:
            FILLABLE_FIELDS[name](default, context)
        except ValueError as error:
            raise ValueError(f"field {name}: {error}") from None
    return dict(value)


# --- Settings: `{"op": "set", "setting": key, "value": …}` --------------------------------------


@dataclass(frozen=True)
class Setting:
    check: Check
    assign: Callable[[ClientState, Any], ClientState]


SETTINGS: Mapping[str, Setting] = {
    "base_url": Setting(https_url, lambda s, v: replace(s, base_url=v)),
    "timeout_ms": Setting(integer(100, 120_000), lambda s, v: replace(s, timeout_ms=v)),
    "max_retries": Setting(integer(0, 10), lambda s, v: replace(s, max_retries=v)),
    "default_currency": Setting(currency(nullable=True), lambda s, v: replace(s, default_currency=v)),
    "api_version": Setting(api_version, lambda s, v: replace(s, api_version=v)),
    "clock_skew_seconds": Setting(integer(-300, 300), lambda s, v: replace(s, clock_skew_seconds=v)),
}


# --- Actions: `{"op": key, **arguments}` -------------------------------------------------------


@dataclass(frozen=True)
class Action:
    params: Mapping[str, Check]  # every argument is required; no others are accepted
    apply: Callable[[ClientState, dict[str, Any], ApplyContext], ClientState]
    rule: Callable[[dict[str, Any]], str | None] | None = None


def _resign(state: ClientState, args: dict[str, Any], context: ApplyContext) -> ClientState:
    # Every attempt is signed afresh, so the retry is re-signed anyway; with use_server_time the
    # client first adopts the server's clock, measured from the failing answer's Date header.
    if not args["use_server_time"]:
        return state
    if context.server_time is None:
        raise ValueError("the failing answer carried no server time")
    skew = round(context.server_time - context.now)
    return replace(state, clock_skew_seconds=integer(-300, 300)(skew, context))


ACTIONS: Mapping[str, Action] = {
    # 401: switch to a fallback credential the client holds, by name; and back.
    "use_fallback_credential": Action({"name": credential_name}, lambda s, a, c: replace(s, credential=a["name"])),
    "use_primary_credential": Action({}, lambda s, a, c: replace(s, credential=None)),
    # Bad HMAC signature.
    "resign_request": Action({"use_server_time": boolean}, _resign),
    # 429: retry up to `attempts` times, delay min(base * 2^n, max), jittered; Retry-After honoured.
    "retry_with_backoff": Action(
        {
            "attempts": integer(1, 10),
            "base_delay_ms": integer(10, 10_000),
            "max_delay_ms": integer(10, 60_000),
            "jitter": boolean,
        },
        lambda s, a, c: replace(
            s,
            max_retries=a["attempts"],
            backoff=Backoff(base_delay_ms=a["base_delay_ms"], max_delay_ms=a["max_delay_ms"], jitter=a["jitter"]),
        ),
        rule=lambda a: "base delay must not exceed max delay" if a["base_delay_ms"] > a["max_delay_ms"] else None,
    ),
    # 400: fill missing required request fields (never overriding the caller's), in the retried
    # call only: `apply_document` returns them apart from the state, which later calls use.
    "fill_required_fields": Action({"fields": field_defaults}, lambda s, a, c: s),
    # Nothing to undo (fills end with the retried call); kept so that existing rollbacks stay valid.
    "clear_filled_fields": Action({}, lambda s, a, c: s),
}

LOG_LEVELS = frozenset({"debug", "info", "warning", "error"})
OPERATION_NAMES = frozenset({"set", "log", *ACTIONS})


def apply_document(
    document: Any, state: ClientState, context: ApplyContext, *, budget_seconds: float = APPLY_BUDGET_SECONDS
) -> Applied:
    """The state after every operation of `document`, or PatchRefused naming the first problem."""
    operations = document_operations(document)
    deadline = time.monotonic() + budget_seconds
    logs: list[tuple[str, str]] = []
    fill: dict[str, Any] = {}
    for index, operation in enumerate(operations):
        if time.monotonic() > deadline:
            raise PatchRefused(f"applying the patch took longer than {budget_seconds:g} s")
        where = f"operations[{index}]"
        name = operation.get("op")
        try:
            if name == "set":
                key = operation.get("setting")
                setting = SETTINGS.get(key) if isinstance(key, str) else None
                if setting is None:
                    raise PatchRefused(f"{where}: unknown setting {key!r}")
                _exact_keys(operation, {"op", "setting", "value"}, where)
                state = setting.assign(state, setting.check(operation["value"], context))
            elif name == "log":
                _exact_keys(operation, {"op", "level", "message"}, where)
                if operation["level"] not in LOG_LEVELS:
                    raise ValueError(f"unknown log level {operation['level']!r}")
                logs.append((operation["level"], text(500)(operation["message"], context)))
            else:
                action = ACTIONS.get(name) if isinstance(name, str) else None
                if action is None:
                    raise PatchRefused(f"{where}: unknown operation {name!r}")
                _exact_keys(operation, {"op", *action.params}, where)
                args = {key: check(operation[key], context) for key, check in action.params.items()}
                problem = action.rule(args) if action.rule else None
                if problem:
                    raise ValueError(problem)
                state = action.apply(state, args, context)
                if name == "fill_required_fields":
                    fill.update(args["fields"])
        except (ValueError, TypeError) as error:
            raise PatchRefused(f"{where} ({name}): {error}") from None
    return Applied(state, tuple(logs), fill)


def document_operations(document: Any) -> list[dict[str, Any]]:
    """The operations of a well-formed document (format, version, 1 to 32 objects), else PatchRefused."""
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise PatchRefused(f"not a {FORMAT} document")
    if set(document) != {"format", "version", "operations"}:
        raise PatchRefused(f"unexpected document keys {sorted(set(document) - {'format', 'version', 'operations'})}")
    if document.get("version") != FORMAT_VERSION or isinstance(document.get("version"), bool):
        raise PatchRefused(f"unsupported document version {document.get('version')!r}")
    operations = document.get("operations")
    if not isinstance(operations, list) or not 1 <= len(operations) <= MAX_OPERATIONS:
        raise PatchRefused(f"operations must be a list of 1 to {MAX_OPERATIONS} operations")
    if not all(isinstance(operation, dict) for operation in operations):
        raise PatchRefused("every operation must be an object")
    return operations


def _exact_keys(operation: dict[str, Any], expected: set[str], where: str) -> None:
    if set(operation) != expected:
        raise PatchRefused(f"{where}: expected keys {sorted(expected)}, got {sorted(operation)}")
