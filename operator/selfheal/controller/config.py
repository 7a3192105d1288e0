"""Operator settings (from flags and SELFHEAL_* environment variables, see the README)."""

from __future__ import annotations

from dataclasses import dataclass, field

from selfheal.core.guard.rules import GuardSettings
from selfheal.core.patchlang import DEFAULT_HOSTS, AllowedHosts


@dataclass(frozen=True)
class OperatorConfig:
    database_url: str
    # How often the registry is read back for changes made outside the operator (SQL, kill switch).
    registry_poll_seconds: float = 2.0
    # Ceiling of the exponential backoff while the registry is unreachable.
    max_retry_delay_seconds: float = 30.0
    run_migrations: bool = True
    # Connections to the registry at most (`--registry-pool-size`): handlers queue for them, never fail.
    pool_size: int = 4
    # Hosts a patch's base URL may point at (`--allowed-host`, SELFHEAL_ALLOWED_HOSTS).
    allowed_hosts: AllowedHosts = DEFAULT_HOSTS
    # The validating admission webhook (`--webhook-*`); None: not served.
    webhook: WebhookConfig | None = None
    guard: GuardConfig = field(default_factory=lambda: GuardConfig())


@dataclass(frozen=True)
class WebhookConfig:
    """Where the admission webhook listens and how the API server reaches it."""

    port: int
    host: str  # name or IP the API server calls, and the certificate's subject
    listen_address: str = "0.0.0.0"
    # PEM files; without them a private CA and serving certificate are generated at start.
    cert_file: str | None = None
    key_file: str | None = None
    ca_file: str | None = None  # the bundle the API server trusts; default: cert_file
    # The ValidatingWebhookConfiguration the operator keeps pointed at itself (None: managed elsewhere).
    configuration_name: str | None = None
    timeout_seconds: int = 5


@dataclass(frozen=True)
class GuardConfig:
    """The guard loop's settings (`selfheal operator --guard-*`); rule settings are per patch too."""

    settings: GuardSettings = field(default_factory=GuardSettings)
    # One evaluation of every patch with recent traffic this often.
    interval_seconds: float = 2.0
    # 24 h figures in status and metrics this often (only changed values are written).
    figures_interval_seconds: float = 15.0
    # Slack-compatible JSON webhook told of every deactivation and warning (None: off).
    webhook_url: str | None = None
    # Prometheus metrics on http://0.0.0.0:PORT/metrics (0: off).
    metrics_port: int = 0
    # Daily application partitions created this many days ahead; dropped after retention (0: keep).
    partitions_ahead_days: int = 7
    retention_days: int = 90
