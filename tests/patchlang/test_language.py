"""The runbook's examples, the samples and the operation document."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from selfheal.core.patchlang import AllowedHosts, PatchCodeError, canonical_json, compile_patch
from selfheal.core.validation import validate_patch
from tests.patchlang.allowed import assert_allowed

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
RUNBOOK_NODE = 'this.baseUrl = "https://api-backup.molam.com"; console.warn("⚡ Fallback to backup API");'
RUNBOOK_PYTHON = 'self.base_url = "https://api-backup.molam.com"'
# The runbook's six corrections, by the error signature each sample heals.
CORRECTIONS = {
    "401": "fallback key",
    "Timeout": "timeout raise",
    "ETIMEDOUT": "timeout raise",
    "invalid_currency": "XOF",
    "invalid_signature": "HMAC",
    "429": "backoff",
    "400": "required fields",
}


def _samples() -> list[dict]:
    return [yaml.safe_load(path.read_text(encoding="utf-8")) for path in sorted(SAMPLES.glob("*.yaml"))]


def _effects(document: dict) -> list[dict]:
    return [op for op in document["operations"] if op["op"] != "log"]


def test_runbook_examples_compile_to_the_same_operations():
    node = compile_patch(language="node", code=RUNBOOK_NODE).document()
    python = compile_patch(language="python", code=RUNBOOK_PYTHON).document()
    backup = {"op": "set", "setting": "base_url", "value": "https://api-backup.molam.com"}
    assert python["operations"] == [backup]
    assert node["operations"] == [backup, {"op": "log", "level": "warning", "message": "⚡ Fallback to backup API"}]
    rollback_node = compile_patch(language="node", code='this.baseUrl = "https://api.molam.com";')
    rollback_python = compile_patch(language="python", code='self.base_url = "https://api.molam.com"')
    assert rollback_node.operations == rollback_python.operations


@pytest.mark.parametrize("sample", _samples(), ids=lambda sample: sample["metadata"]["name"])
def test_every_sample_compiles_with_its_rollback(sample):
    valid = validate_patch(sample["spec"])
    assert valid.rollback is not None, "every sample carries rollback code"
    assert_allowed(valid.operations)
    assert_allowed(valid.rollback_operations)
    assert sample["metadata"]["name"].startswith(sample["spec"]["sdkLanguage"] + "-")


def test_each_of_the_six_corrections_has_a_sample_in_both_languages_doing_the_same():
    by_correction: dict[str, dict[str, dict]] = {}
    for sample in _samples():
        correction = CORRECTIONS.get(sample["spec"]["errorSignature"])
        if correction is not None:
            by_correction.setdefault(correction, {})[sample["spec"]["sdkLanguage"]] = sample["spec"]
    assert len(by_correction) == 6
    for correction, specs in by_correction.items():
        assert set(specs) == {"python", "node"}, correction
        python, node = (validate_patch(specs[language]) for language in ("python", "node"))
        assert _effects(python.operations) == _effects(node.operations), correction
        assert _effects(python.rollback_operations) == _effects(node.rollback_operations), correction


def test_the_document_is_canonical_json():
    compiled = compile_patch(
        language="node",
        code="this.retryWithBackoff({ jitter: true, maxDelayMs: 5000, "
        'baseDelayMs: 200, attempts: 5 }); console.warn("é \\u00e9");',
    )
    text = compiled.canonical_json()
    assert text == (
        '{"format":"selfheal.operations","operations":[{"attempts":5,"base_delay_ms":200,"jitter":true,'
        '"max_delay_ms":5000,"op":"retry_with_backoff"},{"level":"warning","message":"é é","op":"log"}],'
        '"version":1}'
    )
    assert canonical_json(json.loads(text)) == text


def test_units_are_normalised_to_milliseconds():
    python = compile_patch(language="python", code="self.timeout = 2.5").operations
    node = compile_patch(language="node", code="this.timeout = 2500;").operations
    assert python == node == ({"op": "set", "setting": "timeout_ms", "value": 2500},)


def test_comments_blank_lines_and_semicolons_are_fine():
    code = '# fallback\n\nself.timeout = 30  # seconds\nself.max_retries = 2; logger.info("ok")\n'
    assert len(compile_patch(language="python", code=code).operations) == 3
    code = '/* fallback */\nthis.timeout = 30000 // ms\nthis.maxRetries = 2;;\nconsole.log("ok")'
    assert len(compile_patch(language="node", code=code).operations) == 3


def test_errors_point_at_the_offending_literal_counting_characters():
    with pytest.raises(PatchCodeError) as caught:
        compile_patch(language="node", code='console.warn("⚡");\nthis.baseUrl = "https://evil.com";')
    assert (caught.value.line, caught.value.column) == (2, 16)
    with pytest.raises(PatchCodeError) as caught:
        compile_patch(language="python", code='logger.info("⚡"); self.timeout = True')
    assert (caught.value.line, caught.value.column) == (1, 34)


def test_the_allowed_host_list_is_a_setting():
    hosts = AllowedHosts.parse(["*.molam.com"])
    assert compile_patch(
        language="python", code='self.base_url = "https://api-backup-2.molam.com"', allowed_hosts=hosts
    )
    with pytest.raises(PatchCodeError, match="not on the allowed host list"):
        compile_patch(language="python", code='self.base_url = "https://molam.com"', allowed_hosts=hosts)
    with pytest.raises(PatchCodeError, match="not on the allowed host list"):
        compile_patch(language="python", code='self.base_url = "https://api-backup-2.molam.com"')
    for bad in (["*"], ["API.molam.com"], ["evil.com/path"], [""]):
        with pytest.raises(ValueError):
            AllowedHosts.parse(bad)


def test_an_authors_string_escape_compiles_without_a_python_warning_in_the_operator_log():
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        document = compile_patch(language="python", code='logger.warning("fallback \\m key")').document()
    assert caught == [] and "fallback \\\\m key" in canonical_json(document)
