"""Operator settings (from flags and SELFHEAL_* environment variables, see the README)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OperatorConfig:
    database_url: str
    # How often the registry is read back for changes made outside the operator (SQL, kill switch).
    registry_poll_seconds: float = 2.0
    # Ceiling of the exponential backoff while the registry is unreachable.
    max_retry_delay_seconds: float = 30.0
    run_migrations: bool = True
