"""Leader election over a coordination.k8s.io/v1 Lease: what a candidate does next (pure logic).

As client-go does, a lease is judged expired by this process's own clock: from the moment it
last saw the record change, not from the `renewTime` another machine wrote, so clock skew
between nodes cannot hand the lease to two holders.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Step = Literal["create", "renew", "take", "wait"]


@dataclass(frozen=True)
class LeaseRecord:
    holder: str | None
    duration_seconds: int
    renew_time: str | None  # as written by the holder; compared for change, never as a clock
    transitions: int = 0


@dataclass(frozen=True)
class Observation:
    record: LeaseRecord
    seen_at: float  # this process's monotonic clock when the record last changed


def observe(previous: Observation | None, record: LeaseRecord, *, now: float) -> Observation:
    """The observation after reading `record`: its clock restarts only when the record changed."""
    if previous is not None and previous.record == record:
        return previous
    return Observation(record, now)


def next_step(*, identity: str, record: LeaseRecord | None, observation: Observation | None, now: float) -> Step:
    """`create` (no lease yet), `renew` (ours), `take` (released, or expired by our clock), `wait`."""
    if record is None:
        return "create"
    if record.holder == identity:
        return "renew"
    if not record.holder:
        return "take"
    if observation is not None and observation.record == record and now - observation.seen_at > record.duration_seconds:
        return "take"
    return "wait"
