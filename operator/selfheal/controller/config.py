"""Operator settings (from flags and SELFHEAL_* environment variables, see the README)."""

from __future__ import annotations

from dataclasses import dataclass

from selfheal.patchlang import DEFAULT_HOSTS, AllowedHosts


@dataclass(frozen=True)
class OperatorConfig:
    database_url: str
    # How often the registry is read back for changes made outside the operator (SQL, kill switch).
    registry_poll_seconds: float = 2.0
    # Ceiling of the exponential backoff while the registry is unreachable.
    max_retry_delay_seconds: float = 30.0
    run_migrations: bool = True
    # Hosts a patch's base URL may point at (`--allowed-host`, SELFHEAL_ALLOWED_HOSTS).
    allowed_hosts: AllowedHosts = DEFAULT_HOSTS
