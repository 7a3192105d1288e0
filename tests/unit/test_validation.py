import pytest

from selfheal.core.models import SpecError, parse_spec
from selfheal.core.patchlang import PatchCodeError, compile_patch
from selfheal.core.validation import row_problems, validate_patch, validate_spec

GOOD = {
    "sdkLanguage": "node",
    "errorSignature": "ECONNREFUSED",
    "patchCode": 'this.baseUrl = "https://api-backup.molam.com"; console.warn("⚡ Fallback to backup API");',
    "rollbackCode": 'this.baseUrl = "https://api.molam.com";',
    "description": "Fallback vers API de backup",
    "severity": "high",
}


def test_runbook_examples_are_valid():
    spec = validate_spec(GOOD)
    assert (spec.sdk_language, spec.version, spec.active) == ("node", "1.0.0", True)
    assert validate_spec(
        {
            **GOOD,
            "sdkLanguage": "python",
            "patchCode": 'self.base_url = "https://api-backup.molam.com"',
            "rollbackCode": 'self.base_url = "https://api.molam.com"',
        }
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"sdkLanguage": "ruby"}, "spec.sdkLanguage"),
        ({"severity": "urgent"}, "spec.severity"),
        ({"version": "1.0"}, "spec.version"),
        ({"errorSignature": ""}, "spec.errorSignature"),
        ({"errorSignature": "two\nlines"}, "spec.errorSignature"),
        ({"patchCode": "x" * 8193}, "spec.patchCode"),
        ({"description": "d" * 501}, "spec.description"),
        ({"rollbackCode": None, "severity": "critical"}, "spec.rollbackCode"),
        ({"rollbackCode": "  ", "severity": "high"}, "spec.rollbackCode"),
        ({"rollbackCode": GOOD["patchCode"]}, "spec.rollbackCode"),
        ({"active": "maybe"}, "spec.active"),
        ({"unknownField": 1}, "spec.unknownField"),
        ({"patchCode": "this.baseUrl = ;"}, "spec.patchCode"),
        ({"rollbackCode": "this.baseUrl = ("}, "spec.rollbackCode"),
        (
            {"sdkLanguage": "python", "patchCode": "self.base_url = ", "rollbackCode": "self.base_url = None"},
            "spec.patchCode",
        ),
        ({"patchCode": 'require("child_process").exec("id");'}, "spec.patchCode"),
        ({"rollbackCode": 'this.baseUrl = "https://evil.example";'}, "spec.rollbackCode"),
    ],
)
def test_bad_specs_name_the_field(change, field):
    raw = {key: value for key, value in {**GOOD, **change}.items() if value is not None}
    with pytest.raises(SpecError) as caught:
        validate_spec(raw)
    assert any(problem.startswith(field + ":") for problem in caught.value.problems), caught.value.problems


def test_missing_required_fields_are_all_named():
    with pytest.raises(SpecError) as caught:
        parse_spec({"severity": "low"})
    named = {problem.split(":")[0] for problem in caught.value.problems}
    assert named == {"spec.sdkLanguage", "spec.errorSignature", "spec.patchCode", "spec.description"}


def _problem(language: str, code: str) -> PatchCodeError:
    with pytest.raises(PatchCodeError) as caught:
        compile_patch(language=language, code=code)
    return caught.value


def test_code_problems_have_line_and_column():
    problem = _problem("python", "self.timeout = 30\ny = (\n")
    assert problem.line == 2 and problem.column >= 1 and "syntax" in problem.reason
    assert str(_problem("node", "this.timeout = 1000;\nb = ;")).startswith("2:")


def test_hostile_code_is_refused_not_crashing():
    assert _problem("python", "(" * 100_000)
    assert _problem("node", "[" * 100_000)
    assert _problem("node", "a\x00b")


def test_valid_specs_carry_their_compiled_operations():
    valid = validate_patch(GOOD)
    assert [op["op"] for op in valid.operations["operations"]] == ["set", "log"]
    assert valid.rollback_operations["operations"] == [
        {"op": "set", "setting": "base_url", "value": "https://api.molam.com"}
    ]


def test_registry_rows_are_checked_with_column_names():
    row = {
        "sdk_language": "python",
        "error_signature": "ConnectionError",
        "patch_code": 'self.base_url = "x',
        "rollback_code": None,
        "description": "d",
        "severity": "low",
        "version": "1.0.0",
    }
    [problem] = row_problems(row)
    assert problem.startswith("patch_code: 1:")
    assert row_problems({**row, "patch_code": "self.timeout = 30"}) == []
