"""What a patch may do: the fixed table of client settings and healing actions, and the
operation document SDKs receive.

This table is the whole capability of a patch. An SDK applies each operation from the same
table, with no interpreter behind it; anything not listed here cannot be expressed.

Operation document, version 1 (canonical JSON, see `canonical_json`):

    {"format": "selfheal.operations", "version": 1, "operations": [
        {"op": "set", "setting": "base_url", "value": "https://api-backup.molam.com"},
        {"op": "log", "level": "warning", "message": "⚡ Fallback to backup API"}]}
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from selfheal.core.patchlang import bounds
from selfheal.core.patchlang.bounds import Check, Json

Language = Literal["python", "node"]
LANGUAGES: tuple[Language, ...] = ("python", "node")

FORMAT = "selfheal.operations"
FORMAT_VERSION = 1
MAX_OPERATIONS = 32

# The objects patch code may name, per language: settings and actions live on the client,
# log calls on the language's usual logger.
CLIENT = {"python": "self", "node": "this"}
LOGGER = {"python": "logger", "node": "console"}
LOG_LEVELS: dict[Language, dict[str, str]] = {
    "python": {"debug": "debug", "info": "info", "warning": "warning", "error": "error"},
    "node": {"debug": "debug", "info": "info", "log": "info", "warn": "warning", "error": "error"},
}


def camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part.capitalize() for part in rest)


@dataclass(frozen=True)
class Setting:
    """A client attribute a patch may assign a literal to: `self.<python>` / `this.<node>`."""

    key: str
    python: str
    node: str
    check: Check
    python_check: Check | None = None  # when Python writes it in other units

    def name(self, language: Language) -> str:
        return self.python if language == "python" else self.node

    def checker(self, language: Language) -> Check:
        return self.python_check if language == "python" and self.python_check else self.check


SETTINGS: tuple[Setting, ...] = (
    Setting("base_url", python="base_url", node="baseUrl", check=bounds.https_url(what="base URL")),
    Setting(
        "timeout_ms",
        python="timeout",
        node="timeout",
        check=bounds.duration_ms(100, 120_000, what="timeout", written_in="ms"),
        python_check=bounds.duration_ms(100, 120_000, what="timeout", written_in="s"),
    ),
    Setting("max_retries", python="max_retries", node="maxRetries", check=bounds.integer(0, 10, what="max retries")),
    Setting(
        "default_currency",
        python="default_currency",
        node="defaultCurrency",
        check=bounds.currency(what="default currency", nullable=True),
    ),
    Setting("api_version", python="api_version", node="apiVersion", check=bounds.api_version(what="API version")),
    Setting(
        "clock_skew_seconds",
        python="clock_skew_seconds",
        node="clockSkewSeconds",
        check=bounds.integer(-300, 300, what="clock skew in seconds"),
    ),
)


# The request fields a patch may fill, each with its type. No URL, e-mail or free text: a patch
# must not be able to send a payment's callback or receipt somewhere else.
FILLABLE_FIELDS: dict[str, Check] = {
    "currency": bounds.currency(what="default for field 'currency'", nullable=False),
    "country": bounds.country(what="default for field 'country'"),
}


@dataclass(frozen=True)
class Param:
    key: str  # snake_case: the operation's key and the Python keyword; JavaScript uses camelCase
    check: Check

    def name(self, language: Language) -> str:
        return self.key if language == "python" else camel(self.key)


@dataclass(frozen=True)
class Action:
    """A healing action the SDK implements: `self.<key>(…)` / `this.<camelKey>(…)`.

    `positional`: arguments written in order. `options`: Python keyword arguments, or one
    JavaScript object literal; all of them are required, so operations are explicit.
    """

    key: str
    positional: tuple[Param, ...] = ()
    options: tuple[Param, ...] = ()
    rule: Callable[[dict[str, Json]], str | None] | None = None  # checks across arguments

    def name(self, language: Language) -> str:
        return self.key if language == "python" else camel(self.key)


ACTIONS: tuple[Action, ...] = (
    # 401: switch to a fallback credential the SDK holds, by name (its environment variable by
    # default), within bounds.CREDENTIAL_RULE; each SDK narrows it further to what it is configured with.
    Action("use_fallback_credential", positional=(Param("name", bounds.credential_name(what="credential")),)),
    Action("use_primary_credential"),
    # Bad HMAC signature: sign the request again; with the server's clock when asked, keeping the
    # measured skew in the clock_skew_seconds setting.
    Action("resign_request", options=(Param("use_server_time", bounds.boolean(what="use_server_time")),)),
    # 429: exponential backoff, delay = min(base * 2^n, max), with optional full jitter.
    Action(
        "retry_with_backoff",
        options=(
            Param("attempts", bounds.integer(1, 10, what="attempts")),
            Param("base_delay_ms", bounds.integer(10, 10_000, what="base delay (ms)")),
            Param("max_delay_ms", bounds.integer(10, 60_000, what="max delay (ms)")),
            Param("jitter", bounds.boolean(what="jitter")),
        ),
        rule=lambda args: (
            "base delay must not exceed max delay"
            if args["base_delay_ms"] > args["max_delay_ms"]  # type: ignore[operator]  # both integers, bounded above
            else None
        ),
    ),
    # 400: fill missing required request fields, from FILLABLE_FIELDS only, for the retried call only
    # (never for later calls: a default meant for one failed request must not ride on every
    # payment and refund after it). The caller's own values always win.
    Action(
        "fill_required_fields", positional=(Param("fields", bounds.field_defaults(FILLABLE_FIELDS, what="fields")),)
    ),
    # Nothing to undo since fills end with the retried call; kept so that existing rollbacks stay valid.
    Action("clear_filled_fields"),
)

SETTING_BY_NAME: dict[Language, dict[str, Setting]] = {
    language: {setting.name(language): setting for setting in SETTINGS} for language in LANGUAGES
}
ACTION_BY_NAME: dict[Language, dict[str, Action]] = {
    language: {action.name(language): action for action in ACTIONS} for language in LANGUAGES
}

Operation = dict[str, Json]


def set_operation(setting: Setting, value: Json) -> Operation:
    return {"op": "set", "setting": setting.key, "value": value}


def action_operation(action: Action, arguments: dict[str, Json]) -> Operation:
    return {"op": action.key, **arguments}


def log_operation(level: str, message: str) -> Operation:
    return {"op": "log", "level": level, "message": message}


def document(operations: list[Operation]) -> dict[str, Json]:
    return {"format": FORMAT, "version": FORMAT_VERSION, "operations": operations}  # type: ignore[dict-item]


def canonical_json(value: Json | dict[str, Json]) -> str:
    """The one serialisation SDKs verify signatures over.

    Sorted keys, no insignificant whitespace, UTF-8 text, only the escapes JSON requires. The
    documents hold only strings, integers below 2**53, booleans, null, lists and objects with
    ASCII keys, for which this equals the JSON Canonicalization Scheme (RFC 8785).
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
