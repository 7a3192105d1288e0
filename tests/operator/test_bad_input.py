"""Bad patches are refused by the API server where schema or CEL can tell, else marked InvalidSpec.

Either way they are never active in the registry.
"""

from __future__ import annotations

import kubernetes
import pytest

from tests.support import patch_body

SEMVER_REJECTED = "spec.version"

# Each case: spec overrides, the field the API server must name.
REJECTED_BY_API_SERVER = {
    "missing language": ({"sdkLanguage": None}, "spec.sdkLanguage"),
    "missing patch code": ({"patchCode": None}, "spec.patchCode"),
    "missing description": ({"description": None}, "spec.description"),
    "unknown language": ({"sdkLanguage": "ruby"}, "spec.sdkLanguage"),
    "wrong severity": ({"severity": "urgent"}, "spec.severity"),
    "bad semver": ({"version": "1.0"}, SEMVER_REJECTED),
    "oversized patch code": ({"patchCode": "x" * 8193}, "spec.patchCode"),
    "oversized rollback code": ({"rollbackCode": "x" * 8193}, "spec.rollbackCode"),
    "empty signature": ({"errorSignature": ""}, "spec.errorSignature"),
    "multi-line signature": ({"errorSignature": "401\nUnauthorized"}, "spec.errorSignature"),
    "oversized description": ({"description": "d" * 501}, "spec.description"),
    "critical without rollback": ({"severity": "critical", "rollbackCode": None}, "spec.rollbackCode"),
    "high with blank rollback": ({"severity": "high", "rollbackCode": "   "}, "spec.rollbackCode"),
    "rollback repeats patch": (
        {"rollbackCode": 'this.baseUrl = "https://api-backup.molam.com"; console.warn("⚡ Fallback to backup API");'},
        "spec.rollbackCode",
    ),
    "active not a boolean": ({"active": "yes"}, "spec.active"),
}

MARKED_INVALID_BY_OPERATOR = {
    "unparseable node patch": ({"patchCode": "this.baseUrl = ;"}, "spec.patchCode: 1:"),
    "unparseable node rollback": ({"rollbackCode": "this.baseUrl = ("}, "spec.rollbackCode: 1:"),
    "unparseable python patch": (
        {"sdkLanguage": "python", "patchCode": 'self.base_url = "https://x', "rollbackCode": "self.base_url = None"},
        "spec.patchCode: 1:",
    ),
    "nul byte in code": ({"patchCode": "this.a = 1;\u0000"}, "spec.patchCode: 1:1: contains a NUL byte"),
}


@pytest.mark.parametrize("case", REJECTED_BY_API_SERVER, ids=str)
def test_api_server_rejects(case, custom_api, namespace):
    overrides, field = REJECTED_BY_API_SERVER[case]
    with pytest.raises(kubernetes.client.ApiException) as caught:
        custom_api.create_namespaced_custom_object(
            "selfheal.molam.io", "v1alpha1", namespace, "selfhealpatches", patch_body("bad", **overrides)
        )
    assert caught.value.status == 422
    assert field in caught.value.body, caught.value.body


@pytest.mark.parametrize("case", MARKED_INVALID_BY_OPERATOR, ids=str)
def test_operator_marks_invalid_and_never_activates(case, patches, registry, namespace):
    overrides, message = MARKED_INVALID_BY_OPERATOR[case]
    patches.create("bad", **overrides)
    ready = patches.wait_condition("bad", "Ready", status="False", reason="InvalidSpec")
    assert message in ready["message"]
    status = patches.get("bad")["status"]
    assert (status["state"], status["reason"]) == ("Invalid", "InvalidSpec")
    assert registry.row(namespace, "bad") is None  # invalid code never enters the registry


def test_valid_patch_turned_invalid_is_switched_off(patches, registry, namespace):
    patches.create("regress")
    patches.wait_condition("regress", "Active", status="True")
    patches.patch_spec("regress", patchCode="this.baseUrl = (;")
    patches.wait_condition("regress", "Ready", status="False", reason="InvalidSpec", generation=2)
    row = registry.row(namespace, "regress")
    assert (row["active"], row["deactivation_reason"]) == (False, "InvalidSpec")
    assert row["patch_code"] != "this.baseUrl = (;"  # the bad code is not stored
    patches.patch_spec("regress", patchCode='this.baseUrl = "https://api-backup.molam.com/v4";')
    patches.wait_condition("regress", "Active", status="True", generation=3)
    assert registry.row(namespace, "regress")["version"] == "1.0.1"


def test_at_least_twelve_kinds_of_bad_input():
    assert len(REJECTED_BY_API_SERVER) + len(MARKED_INVALID_BY_OPERATOR) >= 12
