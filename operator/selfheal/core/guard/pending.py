"""Prometheus `for:` semantics for one rule (pure logic).

An alert turns pending at the first evaluation where its expression holds, fires at the
first evaluation where it has held for `for` (now - pending_since >= for), and any single
evaluation where it does not hold sends it back to inactive. No evaluation (the registry
was unreachable) changes nothing: the pending time is kept.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    pending_since: float | None  # seconds since the epoch; None: inactive
    firing: bool


def advance(*, pending_since: float | None, holds: bool, now: float, for_seconds: float) -> Step:
    if not holds:
        return Step(pending_since=None, firing=False)
    since = now if pending_since is None else pending_since
    return Step(pending_since=since, firing=now - since >= for_seconds)
