"""Request bodies of the registry API (pure logic): bounded, strict, and errors that name the field.

Strict means that what is accepted is what PostgreSQL stores: a value its text or jsonb columns
would refuse (NaN, Infinity, a number beyond a double, NUL, a lone UTF-16 surrogate) is refused
here, naming the field, so that a row is never accepted and then dropped by the writer.
"""

from __future__ import annotations

import json
import math
import sys
from datetime import datetime
from typing import Annotated, Literal, NotRequired

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

MAX_ERROR_LENGTH = 2000
MAX_OUTCOMES_PER_BATCH = 500


NUL_REASON = "must not contain the NUL character (U+0000)"


class SelfHealRequest(BaseModel):
    """The runbook's test body: {"sdk", "error", "status", "context"}; `code` is optional."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    sdk: Literal["node", "python"]
    error: str = Field(min_length=1, max_length=MAX_ERROR_LENGTH)
    status: int | None = Field(default=None, ge=100, le=599, strict=True)
    code: str | None = Field(default=None, min_length=1, max_length=200)
    context: dict = Field(default_factory=dict)


class LookupBody(TypedDict):
    """A SelfHealRequest as the lookup route validates it: the same fields and rules (a test holds
    them to the same answers), parsed into a plain dict at half the cost of a model per request.
    `status`, `code` and `context` are absent when not sent. Kept bodies are shared: never mutated."""

    sdk: Literal["node", "python"]
    error: Annotated[str, Field(min_length=1, max_length=MAX_ERROR_LENGTH)]
    status: NotRequired[Annotated[int | None, Field(ge=100, le=599, strict=True)]]
    code: NotRequired[Annotated[str | None, Field(min_length=1, max_length=200)]]
    context: NotRequired[dict]


LOOKUP_BODY: TypeAdapter[LookupBody] = TypeAdapter(LookupBody)


def _iso_timestamp(value: object) -> object:
    """An ISO 8601 text as the standard library reads it: its time zone is then a `datetime.timezone`,
    which compares in C, where pydantic's own makes each comparison of a report's time cost
    microseconds. Anything else is left to pydantic, which names the field when it refuses."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


class Outcome(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    patch_id: str | None = Field(default=None, max_length=64)
    sdk: Literal["node", "python"]
    error: str = Field(max_length=MAX_ERROR_LENGTH)
    success: bool = Field(strict=True)
    rollback_triggered: bool = Field(default=False, strict=True)
    patch_applied: bool = Field(default=True, strict=True)
    context: dict = Field(default_factory=dict)
    applied_at: Annotated[datetime | None, BeforeValidator(_iso_timestamp)] = None
    # From the registry's answer that served the patch (core/receipts.py); required with a patch_id.
    receipt: str | None = Field(default=None, max_length=200)


class OutcomeBatch(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    reports: list[Outcome] = Field(min_length=1, max_length=MAX_OUTCOMES_PER_BATCH)


class OutcomeBatchShape(BaseModel):
    """The batch without its reports' contents: what must hold before reports are judged one by one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reports: list[object] = Field(min_length=1, max_length=MAX_OUTCOMES_PER_BATCH)


def field_errors(error: ValidationError, *, prefix: str = "") -> list[dict]:
    """[{field, reason}] for a 400 body: `reports.3.success`, `status`, …"""
    return [
        {
            "field": prefix + (".".join(str(part) for part in item["loc"]) or "body"),
            "reason": item["msg"].removeprefix("Value error, "),
        }
        for item in error.errors(include_url=False)
    ]


def json_syntax_error(error: ValidationError) -> str | None:
    """The parser's message when the body is not JSON at all, else None (a field is wrong)."""
    return next(
        (item["msg"] for item in error.errors(include_url=False) if item["type"] == "json_invalid"),
        None,
    )


def lenient_json(raw: bytes) -> object:
    """The body parsed by a parser that takes what pydantic's refuses but a bad value could explain
    (NaN, Infinity, lone surrogates), to name that value's field; ValueError when that fails too
    (invalid UTF-8, a BOM, trailing data, more than 4,300 digits, nesting beyond Python's limit)."""
    try:
        return json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise ValueError("nested too deeply") from None


# Values PostgreSQL refuses, and nesting beyond what pydantic's parser takes.
NON_FINITE_REASON = "must be a finite number (NaN, Infinity and numbers beyond ±1.8e308 are not JSON)"
SURROGATE_REASON = "must not contain a lone UTF-16 surrogate (\\ud800-\\udfff)"
MAX_DEPTH = 200  # pydantic's parser refuses deeper nesting anyway
DEPTH_REASON = f"must not be nested more than {MAX_DEPTH} levels deep"


def value_problems(value: object, field: str, depth: int = 0) -> list[dict]:
    """[{field, reason}] for every value under `value` PostgreSQL would refuse, with its full path
    (`reports.2.context.ratio`). Walks everything: run it only when a cheap test says it may find something."""
    if isinstance(value, str):
        return [{"field": field, "reason": reason} for reason in _text_problems(value)]
    if isinstance(value, float):
        return [] if math.isfinite(value) else [{"field": field, "reason": NON_FINITE_REASON}]
    if depth >= MAX_DEPTH and isinstance(value, dict | list):
        return [{"field": field, "reason": DEPTH_REASON}]
    problems: list[dict] = []
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{field}.{key}" if field else str(key)
            problems += [{"field": path, "reason": f"key {reason}"} for reason in _text_problems(key)]
            problems += value_problems(item, path, depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            problems += value_problems(item, f"{field}.{index}", depth + 1)
    return problems


def _text_problems(text: str) -> list[str]:
    problems = [NUL_REASON] if "\x00" in text else []
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            problems.append(SURROGATE_REASON)
    return problems


def may_hold_non_finite(context_text: str) -> bool:
    """Cheap test of a context's JSON text: pydantic writes NaN and ±inf as bare NaN and Infinity."""
    return "NaN" in context_text or "Infinity" in context_text


def approximate_size(value: object, depth: int = 0) -> int:
    """Bytes a parsed JSON value holds in this process (sys.getsizeof over its parts; shared
    objects counted each time, so never less than the truth)."""
    size = sys.getsizeof(value)
    if depth < MAX_DEPTH:
        if isinstance(value, dict):
            size += sum(approximate_size(k, depth + 1) + approximate_size(v, depth + 1) for k, v in value.items())
        elif isinstance(value, list):
            size += sum(approximate_size(item, depth + 1) for item in value)
    return size


def may_hold_nul(raw: bytes) -> bool:
    """Cheap test of a request body, run once it parsed: a NUL can only arrive escaped (a raw
    control character, NUL included, is invalid JSON and refused by the parser)."""
    return b"\\u0000" in raw


def nul_fields(body: SelfHealRequest | OutcomeBatch) -> list[dict]:
    """PostgreSQL text and jsonb cannot hold U+0000: the fields that do, to refuse them at the door.

    Run only when `may_hold_nul` says so, which keeps the check off the path of ordinary bodies.
    """
    items = (
        [("", body)]
        if isinstance(body, SelfHealRequest)
        else [(f"reports.{index}.", report) for index, report in enumerate(body.reports)]
    )
    return [
        {"field": prefix + name, "reason": NUL_REASON}
        for prefix, item in items
        for name in ("patch_id", "error", "code", "context")
        if _holds_nul(getattr(item, name, None))
    ]


def _holds_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(key) or _holds_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False
