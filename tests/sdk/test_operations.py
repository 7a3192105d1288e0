"""The fixed table: the shared vectors (tests/vectors/operations.json), every operation covered,
and the table kept equal to the registry compiler's (`selfheal.core.patchlang.operations`)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from molam import config
from molam.errors import ConfigurationError, PatchRefused
from molam.operations import ACTIONS, FILLABLE_FIELDS, OPERATION_NAMES, SETTINGS, ApplyContext, apply_document
from molam.state import ClientState
from tests.sdk import vectors

OPERATIONS = json.loads((vectors.DIRECTORY / "operations.json").read_text(encoding="utf-8"))
SAMPLES = Path(__file__).resolve().parents[2] / "samples"
SDK_SOURCE = Path(__file__).resolve().parents[2] / "sdk" / "python" / "molam"


def context_of(data: dict) -> ApplyContext:
    return ApplyContext(
        now=data["now"],
        server_time=data["server_time"],
        has_credential=lambda name: name in data["credentials"],
        allowed_hosts=frozenset(data["allowed_hosts"]),
        credentials=config.fallback_credentials("fallback_credentials", data["fallback_credentials"]),
    )


@pytest.mark.parametrize("case", OPERATIONS["cases"], ids=lambda case: case["name"])
def test_operation_vector(case):
    state = ClientState.from_dict(case.get("initial_state", OPERATIONS["initial_state"]))
    context = context_of(case.get("context", OPERATIONS["context"]))
    if case["expect"].get("refused"):
        with pytest.raises(PatchRefused) as refusal:
            apply_document(case["document"], state, context)
        if "reason" in case["expect"]:
            assert str(refusal.value) == case["expect"]["reason"]
    else:
        applied = apply_document(case["document"], state, context)
        assert applied.state.as_dict() == case["expect"]["state"]
        assert [list(line) for line in applied.logs] == case["expect"]["logs"]
        assert applied.fill == case["expect"]["fill"]


@pytest.mark.parametrize("case", OPERATIONS["credential_options"], ids=lambda case: case["name"])
def test_fallback_credentials_option_vector(case):
    if "reason" in case["expect"]:
        with pytest.raises(ConfigurationError) as refusal:
            config.fallback_credentials("fallback_credentials", case["value"])
        assert (refusal.value.option, refusal.value.reason) == (case["expect"]["option"], case["expect"]["reason"])
    else:
        names = config.fallback_credentials("fallback_credentials", case["value"])
        assert [name for name in case["expect"]["allows"] if not names.allows(name)] == []
        assert [name for name in case["expect"]["refuses"] if names.allows(name)] == []


def test_the_default_credential_rule_is_the_registry_compilers_rule():
    from selfheal.core.patchlang import bounds

    names = {
        *vectors.hostile_operations.SET_CREDENTIALS,
        *(name for case in OPERATIONS["credential_options"] for name in case["expect"].get("allows", [])),
        *(name for case in OPERATIONS["credential_options"] for name in case["expect"].get("refuses", [])),
    }
    for name in sorted(names):
        assert config.DEFAULT_FALLBACK_CREDENTIALS.allows(name) == bounds.credential_rule_allows(name), name
    assert config.DEFAULT_CREDENTIAL_PREFIX == bounds.CREDENTIAL_PREFIX
    assert config.RESERVED_CREDENTIAL_PREFIX == bounds.RESERVED_CREDENTIAL_PREFIX
    assert bounds.RESERVED_CREDENTIALS <= config.RESERVED_CREDENTIALS


def test_the_fillable_fields_are_the_registry_compilers():
    from selfheal.core.patchlang import operations as registry

    assert list(FILLABLE_FIELDS) == list(registry.FILLABLE_FIELDS)


def test_at_least_fifty_hostile_vectors_name_their_exact_refusal():
    exact = [case for case in OPERATIONS["cases"] if "reason" in case["expect"]]
    options = [case for case in OPERATIONS["credential_options"] if "reason" in case["expect"]]
    assert len(exact) + len(options) >= 50


def test_vectors_cover_every_operation_and_setting():
    applied = [case for case in OPERATIONS["cases"] if not case["expect"].get("refused")]
    operations = {op["op"] for case in applied for op in case["document"]["operations"]}
    settings = {op["setting"] for case in applied for op in case["document"]["operations"] if op["op"] == "set"}
    assert operations == OPERATION_NAMES
    assert settings == set(SETTINGS)


def test_a_refused_document_changes_nothing():
    state = ClientState.from_dict(OPERATIONS["initial_state"])
    document = {
        "format": "selfheal.operations",
        "version": 1,
        "operations": [
            {"op": "set", "setting": "timeout_ms", "value": 30000},
            {"op": "eval", "code": "__import__('os')"},
        ],
    }
    with pytest.raises(PatchRefused, match="unknown operation 'eval'"):
        apply_document(document, state, context_of(OPERATIONS["context"]))
    assert state.timeout_ms == 10000  # immutable: the first operation's change went nowhere


def test_applying_is_bounded_in_time():
    document = {"format": "selfheal.operations", "version": 1, "operations": [{"op": "clear_filled_fields"}] * 2}
    with pytest.raises(PatchRefused, match="longer than"):
        apply_document(
            document,
            ClientState.from_dict(OPERATIONS["initial_state"]),
            context_of(OPERATIONS["context"]),
            budget_seconds=-1,
        )


def test_the_table_is_the_registry_compilers_table():
    from selfheal.core.patchlang import operations as registry

    assert set(SETTINGS) == {setting.key for setting in registry.SETTINGS}
    assert set(ACTIONS) == {action.key for action in registry.ACTIONS}
    for action in registry.ACTIONS:
        assert set(ACTIONS[action.key].params) == {param.key for param in (*action.positional, *action.options)}
    assert registry.FORMAT == "selfheal.operations" and registry.FORMAT_VERSION == 1


@pytest.mark.parametrize("sample", sorted(SAMPLES.glob("python-*.yaml")), ids=lambda path: path.stem)
def test_every_python_sample_compiles_to_a_document_the_sdk_applies(sample):
    from selfheal.core.patchlang.compiler import compile_patch

    spec = yaml.safe_load(sample.read_text())["spec"]
    context = context_of(OPERATIONS["context"])
    state = ClientState.from_dict(OPERATIONS["initial_state"])
    for code in (spec["patchCode"], spec["rollbackCode"]):
        document = json.loads(compile_patch(language="python", code=code).canonical_json())
        apply_document(document, state, context)


def test_the_sdk_has_nothing_dynamic_and_stands_alone():
    # Patches are data: nothing in the SDK can turn text from the wire into code or a name lookup.
    forbidden = re.compile(
        r"(?<![.\w])(eval|exec|compile|getattr|setattr|__import__)\s*\("
        r"|^\s*(from|import)\s+(selfheal|importlib)\b",
        re.MULTILINE,
    )
    for path in SDK_SOURCE.glob("*.py"):
        assert not forbidden.search(path.read_text(encoding="utf-8")), path.name
