"""Request bodies of the registry API (pure logic): bounded, and errors that name the field."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

MAX_ERROR_LENGTH = 2000
MAX_OUTCOMES_PER_BATCH = 500


NUL_REASON = "must not contain the NUL character (U+0000)"


class SelfHealRequest(BaseModel):
    """The runbook's test body: {"sdk", "error", "status", "context"}; `code` is optional."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    sdk: Literal["node", "python"]
    error: str = Field(min_length=1, max_length=MAX_ERROR_LENGTH)
    status: int | None = Field(default=None, ge=100, le=599)
    code: str | None = Field(default=None, min_length=1, max_length=200)
    context: dict = Field(default_factory=dict)


class Outcome(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    patch_id: str | None = Field(default=None, max_length=64)
    sdk: Literal["node", "python"]
    error: str = Field(max_length=MAX_ERROR_LENGTH)
    success: bool
    rollback_triggered: bool = False
    patch_applied: bool = True
    context: dict = Field(default_factory=dict)
    applied_at: datetime | None = None


class OutcomeBatch(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    reports: list[Outcome] = Field(min_length=1, max_length=MAX_OUTCOMES_PER_BATCH)


def field_errors(error: ValidationError) -> list[dict]:
    """[{field, reason}] for a 400 body: `reports.3.success`, `status`, …"""
    return [
        {
            "field": ".".join(str(part) for part in item["loc"]) or "body",
            "reason": item["msg"].removeprefix("Value error, "),
        }
        for item in error.errors(include_url=False)
    ]


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
