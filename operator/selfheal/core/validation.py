"""Everything that decides whether a patch may be served (pure logic, no I/O).

One entry point per source: a CR's spec, or a registry row written by hand in SQL. Both run
the same model rules and the same compiler, so the answer never depends on the path; the
admission webhook and `selfheal check` use them too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from selfheal.core.models import PatchSpec, SpecError, parse_spec
from selfheal.core.patchlang import DEFAULT_HOSTS, AllowedHosts, CompiledPatch, PatchCodeError, compile_patch
from selfheal.core.patchlang.bounds import Json


@dataclass(frozen=True)
class ValidPatch:
    """A spec that may be served, with what its code and rollback code compile to."""

    spec: PatchSpec
    patch: CompiledPatch
    rollback: CompiledPatch | None

    @property
    def operations(self) -> dict[str, Json]:
        return self.patch.document()

    @property
    def rollback_operations(self) -> dict[str, Json] | None:
        return self.rollback.document() if self.rollback else None


def operation_counts(valid: ValidPatch) -> dict[str, int]:
    """What status shows: how many operations the patch and its rollback compile to."""
    return {"patch": len(valid.patch.operations), "rollback": len(valid.rollback.operations) if valid.rollback else 0}


def _compile(field: str, *, language: str, code: str, hosts: AllowedHosts, problems: list[str]) -> CompiledPatch | None:
    try:
        return compile_patch(language=language, code=code, allowed_hosts=hosts)
    except PatchCodeError as error:
        problems.append(f"{field}: {error}")
        return None


def validate_patch(raw: object, *, allowed_hosts: AllowedHosts = DEFAULT_HOSTS) -> ValidPatch:
    """The parsed and compiled spec, or SpecError naming every field that stops it from being served."""
    try:
        spec = parse_spec(raw)
    except SpecError as error:
        raise SpecError(error.problems + _code_problems_of_invalid(raw, error.problems, allowed_hosts)) from None
    problems: list[str] = []
    patch = _compile(
        "spec.patchCode", language=spec.sdk_language, code=spec.patch_code, hosts=allowed_hosts, problems=problems
    )
    rollback = None
    # An empty rollback is no rollback (the model requires one where severity needs it).
    if spec.rollback_code and spec.rollback_code.strip():
        rollback = _compile(
            "spec.rollbackCode",
            language=spec.sdk_language,
            code=spec.rollback_code,
            hosts=allowed_hosts,
            problems=problems,
        )
    if problems or patch is None:
        raise SpecError(problems)
    return ValidPatch(spec, patch, rollback)


def _code_problems_of_invalid(raw: object, known: list[str], hosts: AllowedHosts) -> list[str]:
    """Compiler problems of a spec the model refused, so that one pass names every problem."""
    if not isinstance(raw, dict) or raw.get("sdkLanguage") not in ("python", "node"):
        return []
    problems: list[str] = []
    for field, key in (("spec.patchCode", "patchCode"), ("spec.rollbackCode", "rollbackCode")):
        code = raw.get(key)
        if isinstance(code, str) and code.strip() and not any(p.startswith(field + ":") for p in known):
            _compile(field, language=raw["sdkLanguage"], code=code, hosts=hosts, problems=problems)
    return problems


def validate_spec(raw: object, *, allowed_hosts: AllowedHosts = DEFAULT_HOSTS) -> PatchSpec:
    return validate_patch(raw, allowed_hosts=allowed_hosts).spec


def validate_row(fields: dict[str, Any], *, allowed_hosts: AllowedHosts = DEFAULT_HOSTS) -> ValidPatch:
    """A registry row (column names) as a ValidPatch, or SpecError with the registry's column names."""
    raw = {key: value for key, value in fields.items() if value is not None}
    try:
        return validate_patch(raw, allowed_hosts=allowed_hosts)
    except SpecError as error:
        raise SpecError([_column_names(problem) for problem in error.problems]) from None


def row_problems(fields: dict[str, Any], *, allowed_hosts: AllowedHosts = DEFAULT_HOSTS) -> list[str]:
    try:
        validate_row(fields, allowed_hosts=allowed_hosts)
    except SpecError as error:
        return error.problems
    return []


_COLUMN_OF = {
    "spec.sdkLanguage": "sdk_language",
    "spec.errorSignature": "error_signature",
    "spec.patchCode": "patch_code",
    "spec.rollbackCode": "rollback_code",
    "spec.description": "description",
    "spec.severity": "severity",
    "spec.version": "version",
}


def _column_names(problem: str) -> str:
    field, _, reason = problem.partition(":")
    return f"{_COLUMN_OF.get(field, field)}:{reason}"
