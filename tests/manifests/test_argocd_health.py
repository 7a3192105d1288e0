"""The Argo CD health check for SelfHealPatch, run with a real Lua interpreter (lupa) on objects
whose status comes from the operator's own status functions, and shown as-is in docs/argocd.md."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import lupa
import pytest
import yaml

from selfheal.core.status import RegistryState, invalid_status, registry_status, synced_status, unavailable_status

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = (ROOT / "manifests/argocd/selfhealpatch-health.lua").read_text()
NOW = "2026-01-01T00:00:00Z"


def health(obj: dict) -> tuple[str, str]:
    """What Argo CD does: the object as the global `obj`, the script's returned table."""
    lua = lupa.LuaRuntime()
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(SCRIPT)
    return result["status"], result["message"]


def sample(generation: int = 1, status: dict | None = None) -> dict:
    obj = yaml.safe_load((ROOT / "samples/python-401-fallback-key.yaml").read_text())
    obj["metadata"].update(generation=generation, namespace="selfheal-system")
    if status is not None:
        obj["status"] = status
    return obj


def synced(*, active: bool = True, reason: str | None = None, message: str | None = None, generation: int = 1) -> dict:
    row = RegistryState(
        id="p-1",
        version="1.0.0",
        active=active,
        source_generation=generation,
        deactivation_reason=reason,
        deactivation_message=message,
    )
    return synced_status({}, generation=generation, row=row, now=NOW)


def test_new_object_is_progressing():
    assert health(sample()) == ("Progressing", "Waiting for the selfheal operator")


def test_synced_and_served_is_healthy():
    assert health(sample(status=synced())) == ("Healthy", "served by the registry as version 1.0.0")


def test_new_generation_not_synced_yet_is_progressing():
    assert health(sample(generation=2, status=synced())) == ("Progressing", "Generation 2 is not synced yet")


def test_registry_unreachable_is_progressing():
    status = unavailable_status(synced(), generation=1, error="connection refused", now=NOW)
    state, message = health(sample(status=status))
    assert state == "Progressing" and message.startswith("RegistryUnavailable: registry unreachable")


def test_invalid_spec_is_degraded():
    status = invalid_status({}, generation=1, problems=["spec.patchCode: 1:1: unknown name 'eval'"], now=NOW)
    assert health(sample(status=status)) == ("Degraded", "Invalid: spec.patchCode: 1:1: unknown name 'eval'")


@pytest.mark.parametrize("reason", ["AutoDeactivated", "ManualKillSwitch", "DeactivatedInRegistry"])
def test_switched_off_is_degraded(reason):
    status = registry_status(
        synced(),
        generation=1,
        now=NOW,
        row=RegistryState(
            id="p-1",
            version="1.0.0",
            active=False,
            source_generation=1,
            deactivation_reason=reason,
            deactivation_message="rollback rate 50% over 5m" if reason == "AutoDeactivated" else None,
        ),
    )
    state, message = health(sample(status=status))
    assert state == "Degraded" and message.startswith(f"{reason}: ")


def test_off_by_its_own_spec_is_healthy():
    status = synced(active=False, reason="SpecInactive")
    assert health(sample(status=status)) == ("Healthy", "Inactive: spec.active is false")


def test_docs_show_the_script_argo_cd_runs():
    docs = (ROOT / "docs/argocd.md").read_text()
    block = re.search(
        r"resource\.customizations\.health\.selfheal\.molam\.io_SelfHealPatch: \|\n(.*?)```", docs, flags=re.S
    ).group(1)
    assert textwrap.dedent(block) == SCRIPT
