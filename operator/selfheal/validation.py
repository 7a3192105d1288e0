"""Everything that decides whether a patch may be served (pure logic, no I/O).

One entry point per source: a CR's spec, or a registry row written by hand in SQL. Both run
the same model rules and the same code check, so the answer never depends on the path.
"""

from __future__ import annotations

from selfheal.models import PatchSpec, SpecError, parse_spec
from selfheal.patchcode import check_code


def code_problems(spec: PatchSpec) -> list[str]:
    problems = [f"spec.patchCode: {problem}" for problem in check_code(language=spec.sdk_language, code=spec.patch_code)]
    if spec.rollback_code:
        problems += [
            f"spec.rollbackCode: {problem}"
            for problem in check_code(language=spec.sdk_language, code=spec.rollback_code)
        ]
    return problems


def validate_spec(raw: object) -> PatchSpec:
    """The parsed spec, or SpecError naming every field that stops it from being served."""
    spec = parse_spec(raw)
    problems = code_problems(spec)
    if problems:
        raise SpecError(problems)
    return spec


def row_problems(fields: dict) -> list[str]:
    """Problems of a registry row (column names), reported with the registry's column names."""
    raw = {key: value for key, value in fields.items() if value is not None}
    try:
        validate_spec(raw)
    except SpecError as error:
        return [_column_names(problem) for problem in error.problems]
    return []


_COLUMN_OF = {
    "spec.sdkLanguage": "sdk_language", "spec.errorSignature": "error_signature", "spec.patchCode": "patch_code",
    "spec.rollbackCode": "rollback_code", "spec.description": "description", "spec.severity": "severity",
    "spec.version": "version",
}


def _column_names(problem: str) -> str:
    field, _, reason = problem.partition(":")
    return f"{_COLUMN_OF.get(field, field)}:{reason}"
