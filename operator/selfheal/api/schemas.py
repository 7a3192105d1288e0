"""Request bodies of the registry API (pure logic): bounded, and errors that name the field."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import json

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

MAX_ERROR_LENGTH = 2000
MAX_REPORTS_PER_BATCH = 500


def _no_nul(value: object) -> object:
    """PostgreSQL text and jsonb cannot hold U+0000: refuse it here, naming the field, not at write time."""
    text = value if isinstance(value, str) else json.dumps(value)
    if "\x00" in text or "\\u0000" in text:
        raise ValueError("must not contain the NUL character (U+0000)")
    return value


class SelfHealRequest(BaseModel):
    """The runbook's test body: {"sdk", "error", "status", "context"}; `code` is optional."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    sdk: Literal["node", "python"]
    error: str = Field(min_length=1, max_length=MAX_ERROR_LENGTH)
    status: int | None = Field(default=None, ge=100, le=599)
    code: str | None = Field(default=None, min_length=1, max_length=200)
    context: dict = Field(default_factory=dict)

    _text_without_nul = field_validator("error", "code", "context")(_no_nul)


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

    _text_without_nul = field_validator("patch_id", "error", "context")(_no_nul)


class ReportBatch(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    reports: list[Outcome] = Field(min_length=1, max_length=MAX_REPORTS_PER_BATCH)


def field_errors(error: ValidationError) -> list[dict]:
    """[{field, reason}] for a 400 body: `reports.3.success`, `status`, …"""
    return [{"field": ".".join(str(part) for part in item["loc"]) or "body",
             "reason": item["msg"].removeprefix("Value error, ")} for item in error.errors(include_url=False)]
