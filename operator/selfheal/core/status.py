"""The SelfHealPatch status as a function of what the operator learned (pure logic, no I/O).

Conditions follow the Kubernetes conventions: `observedGeneration` on each, and a
`lastTransitionTime` that only moves when the condition's status flips, so that
`kubectl wait --for=condition=Ready` and dashboards see real transitions only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

READY = "Ready"
SYNCED = "Synced"
ACTIVE = "Active"

# Reasons a patch is not served; the registry stores them in `deactivation_reason`.
REASON_SPEC_INACTIVE = "SpecInactive"
REASON_INVALID_SPEC = "InvalidSpec"
REASON_DEACTIVATED_IN_REGISTRY = "DeactivatedInRegistry"
REASON_DELETED = "Deleted"
REASON_REGISTRY_UNAVAILABLE = "RegistryUnavailable"
REASON_AUTO_DEACTIVATED = "AutoDeactivated"  # the guard proved the patch bad
REASON_MANUAL_KILL_SWITCH = "ManualKillSwitch"  # a person switched it off during an incident


class Condition(TypedDict, total=False):
    type: str
    status: str  # "True", "False" or "Unknown"
    reason: str
    message: str
    observedGeneration: int
    lastTransitionTime: str


class GuardFigures(TypedDict, total=False):
    state: str
    applications24h: int
    successPercent: float | None
    rollbackPercent: float | None
    switchedOffFor: list[str] | None  # developers the guard switched the patch off for, and only for them


class PatchStatus(TypedDict, total=False):
    """A SelfHealPatch's `status`, as the CRD's structural schema declares it."""

    observedGeneration: int
    state: str  # Active, Inactive, Invalid, Pending
    reason: str
    conditions: list[Condition]
    registryId: str
    registryVersion: str
    syncedGeneration: int
    operations: dict[str, int] | None
    guard: GuardFigures


@dataclass(frozen=True)
class RegistryState:
    """What the registry holds for one patch after a sync or a read."""

    id: str
    version: str
    active: bool
    source_generation: int | None
    deactivation_reason: str | None = None
    deactivation_message: str | None = None


def set_condition(
    conditions: list[Condition],
    *,
    type: str,
    status: bool | None,
    reason: str,
    message: str,
    generation: int,
    now: str,
) -> list[Condition]:
    """A copy of `conditions` with `type` set; the transition time moves only on a status flip."""
    text = "Unknown" if status is None else ("True" if status else "False")
    previous = next((c for c in conditions if c.get("type") == type), None)
    since = previous.get("lastTransitionTime", now) if previous and previous.get("status") == text else now
    updated: Condition = {
        "type": type,
        "status": text,
        "reason": reason,
        "message": message[:4096],
        "observedGeneration": generation,
        "lastTransitionTime": since,
    }
    return [c for c in conditions if c.get("type") != type] + [updated]


def _summary(conditions: list[Condition]) -> tuple[str, str]:
    by_type = {c["type"]: c for c in conditions}
    ready, synced, active = by_type.get(READY), by_type.get(SYNCED), by_type.get(ACTIVE)
    if ready and ready["reason"] == REASON_INVALID_SPEC:
        return "Invalid", REASON_INVALID_SPEC
    if synced is None or synced["status"] != "True":
        return "Pending", synced["reason"] if synced else "NotSynced"
    if active is not None and active["status"] == "True":
        return "Active", "Synced"
    return "Inactive", active["reason"] if active else "Unknown"


def _with_summary(status: PatchStatus, conditions: list[Condition], generation: int) -> PatchStatus:
    state, reason = _summary(conditions)
    return {**status, "observedGeneration": generation, "state": state, "reason": reason, "conditions": conditions}


def synced_status(previous: PatchStatus, *, generation: int, row: RegistryState, now: str) -> PatchStatus:
    """Status after the registry accepted (or already held) this generation."""
    conditions = list(previous.get("conditions") or [])
    conditions = set_condition(
        conditions,
        type=SYNCED,
        status=True,
        reason="Synced",
        message=f"registry version {row.version} holds generation {generation}",
        generation=generation,
        now=now,
    )
    conditions = set_condition(
        conditions,
        type=READY,
        status=True,
        reason="Ready",
        message="patch is valid and synced to the registry",
        generation=generation,
        now=now,
    )
    conditions = _active_condition(conditions, row=row, generation=generation, now=now)
    status: PatchStatus = {
        **previous,
        "registryId": row.id,
        "registryVersion": row.version,
        "syncedGeneration": generation,
    }
    return _with_summary(status, conditions, generation)


def registry_status(previous: PatchStatus, *, generation: int, row: RegistryState, now: str) -> PatchStatus:
    """Status after the registry changed under the operator (SQL, kill switch): only Active moves."""
    conditions = _active_condition(list(previous.get("conditions") or []), row=row, generation=generation, now=now)
    return _with_summary({**previous, "registryVersion": row.version}, conditions, generation)


def invalid_status(previous: PatchStatus, *, generation: int, problems: list[str], now: str) -> PatchStatus:
    message = "; ".join(problems)
    conditions = list(previous.get("conditions") or [])
    for type in (READY, SYNCED, ACTIVE):
        conditions = set_condition(
            conditions,
            type=type,
            status=False,
            reason=REASON_INVALID_SPEC,
            message=message,
            generation=generation,
            now=now,
        )
    return _with_summary(PatchStatus(**previous), conditions, generation)


def unavailable_status(previous: PatchStatus, *, generation: int, error: str, now: str) -> PatchStatus:
    """The registry could not be reached: not synced yet; Active keeps its last known value."""
    message = f"registry unreachable, retrying: {error}"
    conditions = list(previous.get("conditions") or [])
    for type in (SYNCED, READY):
        conditions = set_condition(
            conditions,
            type=type,
            status=False,
            reason=REASON_REGISTRY_UNAVAILABLE,
            message=message,
            generation=generation,
            now=now,
        )
    return _with_summary(PatchStatus(**previous), conditions, generation)


def _active_condition(conditions: list[Condition], *, row: RegistryState, generation: int, now: str) -> list[Condition]:
    if row.active:
        return set_condition(
            conditions,
            type=ACTIVE,
            status=True,
            reason="Active",
            message=f"served by the registry as version {row.version}",
            generation=generation,
            now=now,
        )
    reason = row.deactivation_reason or REASON_DEACTIVATED_IN_REGISTRY
    message = row.deactivation_message or _DEFAULT_MESSAGES.get(reason, "not served by the registry")
    return set_condition(
        conditions, type=ACTIVE, status=False, reason=reason, message=message, generation=generation, now=now
    )


_DEFAULT_MESSAGES = {
    REASON_SPEC_INACTIVE: "spec.active is false",
    REASON_DEACTIVATED_IN_REGISTRY: "active was set to false in the registry; a new spec generation brings it back",
    REASON_DELETED: "the SelfHealPatch was deleted; its history is kept",
}
