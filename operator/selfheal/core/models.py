"""The SelfHealPatch spec as a frozen pydantic model (pure logic, no I/O).

The CRD's schema and CEL rules reject most bad input at the API server; this model repeats
those rules so that the operator never trusts a CR blindly (an old CRD, a bypassed webhook)
and so that offline checks give the same answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from selfheal.core.guard.spec import GuardSpec
from selfheal.core.semver import is_semver

MAX_CODE_LENGTH = 8192
MAX_SIGNATURE_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 500

Language = Literal["node", "python"]
Severity = Literal["low", "medium", "high", "critical"]
SEVERITIES_NEEDING_ROLLBACK = frozenset({"high", "critical"})


class PatchSpec(BaseModel):
    """`spec` of a SelfHealPatch, in the registry's terms."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, str_strip_whitespace=False)

    sdk_language: Language = Field(alias="sdkLanguage")
    error_signature: str = Field(alias="errorSignature", min_length=1, max_length=MAX_SIGNATURE_LENGTH)
    patch_code: str = Field(alias="patchCode", min_length=1, max_length=MAX_CODE_LENGTH)
    rollback_code: str | None = Field(default=None, alias="rollbackCode", max_length=MAX_CODE_LENGTH)
    description: str = Field(min_length=1, max_length=MAX_DESCRIPTION_LENGTH)
    severity: Severity = "medium"
    version: str = Field(default="1.0.0", max_length=64)
    active: bool = True
    # Per-patch overrides of the guard (spec.guard); the operator never writes spec.
    guard: GuardSpec | None = None

    @field_validator("error_signature")
    @classmethod
    def _one_trimmed_line(cls, value: str) -> str:
        if value != value.strip() or "\n" in value or "\r" in value:
            raise ValueError("must be one line without leading or trailing blanks")
        return value

    @field_validator("version")
    @classmethod
    def _semver(cls, value: str) -> str:
        if not is_semver(value):
            raise ValueError("must be a semantic version such as 1.2.3")
        return value

    @model_validator(mode="after")
    def _rollback_rules(self) -> PatchSpec:
        has_rollback = bool(self.rollback_code and self.rollback_code.strip())
        if self.severity in SEVERITIES_NEEDING_ROLLBACK and not has_rollback:
            raise ValueError(
                f"rollbackCode: is required for {self.severity} patches (runbook: always provide a rollback_code)"
            )
        if self.rollback_code is not None and self.rollback_code == self.patch_code:
            raise ValueError("rollbackCode: must undo the patch, not repeat patchCode")
        return self


class SpecError(ValueError):
    """A spec that cannot be served; `problems` are `spec.field: reason` strings."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _problem_text(error: Mapping[str, Any]) -> str:
    path = ".".join(str(part) for part in error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    if not path:
        # Model-level rules put the field name at the start of their message.
        return f"spec.{message}"
    return f"spec.{path}: {message}"


def parse_spec(raw: object) -> PatchSpec:
    """Parse a CR's `spec`, raising SpecError that names every bad field."""
    try:
        return PatchSpec.model_validate(raw)
    except ValidationError as error:
        raise SpecError([_problem_text(item) for item in error.errors(include_url=False)]) from None
