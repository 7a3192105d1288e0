"""Options shared by several `selfheal` commands, each declared once with one help text."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click

from selfheal.cli.errors import check_database_url
from selfheal.controller.config import GuardConfig, WebhookConfig
from selfheal.core.guard.rules import VOLUME_RULE, GuardSettings, RegressionSettings
from selfheal.core.patchlang import DEFAULT_ALLOWED_HOSTS, AllowedHosts

F = TypeVar("F", bound=Callable[..., Any])

DATABASE_URL_HELP = "PostgreSQL URL of the registry, e.g. postgresql://user@host:5432/molam_connect."


def _postgres_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    return None if value is None else check_database_url(value)


def database_url_option(function: F) -> F:
    """`--database-url` / SELFHEAL_DATABASE_URL, required."""
    return click.option(
        "--database-url",
        envvar="SELFHEAL_DATABASE_URL",
        required=True,
        metavar="URL",
        callback=_postgres_url,
        help=DATABASE_URL_HELP,
    )(function)


def optional_database_url_option(help_text: str) -> Callable[[F], F]:
    """`--database-url` where the command can do without it; `help_text` says what it adds."""
    return click.option(
        "--database-url",
        envvar="SELFHEAL_DATABASE_URL",
        default=None,
        metavar="URL",
        callback=_postgres_url,
        help=f"{DATABASE_URL_HELP} {help_text}",
    )


ALLOWED_HOSTS_HELP = (
    "Host a patch's base URL may point at (repeatable; exact name, or *.domain for every host below "
    f"domain); the environment variable takes a comma-separated list. [default: {','.join(DEFAULT_ALLOWED_HOSTS)}]"
)


def _allowed_hosts(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> AllowedHosts:
    entries = [entry for value in values for entry in value.split(",") if entry.strip()]
    try:
        return AllowedHosts.parse(entries or DEFAULT_ALLOWED_HOSTS)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def allowed_hosts_option(function):
    """`--allowed-host` (repeatable) / SELFHEAL_ALLOWED_HOSTS, passed on as `allowed_hosts`."""
    return click.option(
        "--allowed-host",
        "allowed_hosts",
        multiple=True,
        metavar="HOST",
        envvar="SELFHEAL_ALLOWED_HOSTS",
        callback=_allowed_hosts,
        help=ALLOWED_HOSTS_HELP,
    )(function)


_WEBHOOK_OPTIONS = (
    click.option(
        "--webhook-port",
        type=click.IntRange(0, 65535),
        default=0,
        envvar="SELFHEAL_WEBHOOK_PORT",
        help="Serve the validating admission webhook on HTTPS at this port (0: off).",
    ),
    click.option(
        "--webhook-host",
        default="127.0.0.1",
        show_default=True,
        envvar="SELFHEAL_WEBHOOK_HOST",
        help="Name or IP the API server calls the webhook at (in a cluster: the Service's DNS name).",
    ),
    click.option(
        "--webhook-listen",
        default="0.0.0.0",
        show_default=True,
        metavar="ADDRESS",
        help="Address the webhook listens on.",
    ),
    click.option(
        "--webhook-cert",
        type=click.Path(exists=True, dir_okay=False),
        envvar="SELFHEAL_WEBHOOK_CERT",
        help="Serving certificate (PEM). Without it and --webhook-key, a private CA and certificate "
        "for --webhook-host are generated at start.",
    ),
    click.option(
        "--webhook-key",
        type=click.Path(exists=True, dir_okay=False),
        envvar="SELFHEAL_WEBHOOK_KEY",
        help="Private key of --webhook-cert (PEM).",
    ),
    click.option(
        "--webhook-ca",
        type=click.Path(exists=True, dir_okay=False),
        envvar="SELFHEAL_WEBHOOK_CA",
        help="CA bundle the API server trusts for the webhook (default: --webhook-cert).",
    ),
    click.option(
        "--webhook-configuration",
        metavar="NAME",
        envvar="SELFHEAL_WEBHOOK_CONFIGURATION",
        help="Create or update this ValidatingWebhookConfiguration at start, pointed at this operator "
        "(SelfHealPatch only, failurePolicy Fail). It stays when the operator stops, so "
        "SelfHealPatch writes fail loudly while the webhook is down. Default: managed elsewhere.",
    ),
    click.option(
        "--webhook-timeout",
        type=click.IntRange(1, 30),
        default=5,
        show_default=True,
        metavar="SECONDS",
        help="timeoutSeconds of the webhook configuration.",
    ),
)


def webhook_options(function):
    """The `--webhook-*` options, passed on as one `webhook` argument (a WebhookConfig, or None when off)."""

    @functools.wraps(function)
    def with_webhook(
        *args,
        webhook_port: int,
        webhook_host: str,
        webhook_listen: str,
        webhook_cert: str | None,
        webhook_key: str | None,
        webhook_ca: str | None,
        webhook_configuration: str | None,
        webhook_timeout: int,
        **kwargs,
    ):
        if bool(webhook_cert) != bool(webhook_key):
            raise click.UsageError("--webhook-cert and --webhook-key go together")
        webhook = (
            WebhookConfig(
                port=webhook_port,
                host=webhook_host,
                listen_address=webhook_listen,
                cert_file=webhook_cert,
                key_file=webhook_key,
                ca_file=webhook_ca,
                configuration_name=webhook_configuration,
                timeout_seconds=webhook_timeout,
            )
            if webhook_port
            else None
        )
        return function(*args, webhook=webhook, **kwargs)

    for option in reversed(_WEBHOOK_OPTIONS):
        with_webhook = option(with_webhook)
    return with_webhook


def guard_options(function):
    """The guard's settings on `selfheal operator`; `guard_config(**values)` builds them."""
    options = [
        click.option(
            "--guard-interval",
            type=click.FloatRange(0.2, 300),
            default=2.0,
            show_default=True,
            envvar="SELFHEAL_GUARD_INTERVAL",
            metavar="SECONDS",
            help="How often the guard evaluates every patch with recent traffic.",
        ),
        click.option(
            "--guard-min-samples",
            type=click.IntRange(5, 100000),
            default=20,
            show_default=True,
            envvar="SELFHEAL_GUARD_MIN_SAMPLES",
            help="Fewer applications in a rule's window is Inconclusive, never a deactivation.",
        ),
        click.option(
            "--guard-early-cutoff/--no-guard-early-cutoff",
            default=True,
            show_default=True,
            envvar="SELFHEAL_GUARD_EARLY_CUTOFF",
            help="Deactivate before `for:` when a confidence bound proves the rate above its threshold.",
        ),
        click.option(
            "--guard-early-confidence",
            type=click.FloatRange(0.9, 0.999999),
            default=0.999,
            show_default=True,
            envvar="SELFHEAL_GUARD_EARLY_CONFIDENCE",
            help="Confidence of the Wilson interval used by the early cut-off.",
        ),
        click.option(
            "--guard-volume-deactivates",
            is_flag=True,
            envvar="SELFHEAL_GUARD_VOLUME_DEACTIVATES",
            help="The volume rule (> 100 applications/min for 10 min) deactivates instead of warning.",
        ),
        click.option(
            "--guard-regression/--no-guard-regression",
            default=True,
            show_default=True,
            envvar="SELFHEAL_GUARD_REGRESSION",
            help="The Regression rule: a CUSUM of each patch's failure rate against its own 24 h baseline.",
        ),
        click.option(
            "--guard-regression-factor",
            type=click.FloatRange(1.5, 20),
            default=3.0,
            show_default=True,
            envvar="SELFHEAL_GUARD_REGRESSION_FACTOR",
            help="The Regression rule is tuned to catch failures at this multiple of the baseline.",
        ),
        click.option(
            "--guard-regression-deactivates",
            is_flag=True,
            envvar="SELFHEAL_GUARD_REGRESSION_DEACTIVATES",
            help="The Regression rule deactivates instead of warning.",
        ),
        click.option(
            "--guard-webhook-url",
            default=None,
            envvar="SELFHEAL_GUARD_WEBHOOK_URL",
            metavar="URL",
            help="POST a Slack-compatible JSON message on every deactivation and warning.",
        ),
        click.option(
            "--guard-retention-days",
            type=click.IntRange(0, 3650),
            default=90,
            show_default=True,
            envvar="SELFHEAL_GUARD_RETENTION_DAYS",
            help="Drop daily partitions of sdk_patch_applications older than this (0: keep all).",
        ),
        click.option(
            "--metrics-port",
            type=click.IntRange(0, 65535),
            default=0,
            envvar="SELFHEAL_METRICS_PORT",
            help="Serve Prometheus metrics on http://0.0.0.0:PORT/metrics (0: off).",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def guard_config(
    *,
    guard_interval: float,
    guard_min_samples: int,
    guard_early_cutoff: bool,
    guard_early_confidence: float,
    guard_volume_deactivates: bool,
    guard_webhook_url: str | None,
    guard_retention_days: int,
    metrics_port: int,
    guard_regression: bool = True,
    guard_regression_factor: float = 3.0,
    guard_regression_deactivates: bool = False,
):
    settings = GuardSettings(
        min_samples=guard_min_samples,
        early_cutoff=guard_early_cutoff,
        early_confidence=guard_early_confidence,
        regression=RegressionSettings(
            enabled=guard_regression, factor=guard_regression_factor, deactivate=guard_regression_deactivates
        ),
    )
    if guard_volume_deactivates:
        settings = settings.with_rule(VOLUME_RULE, action="deactivate")
    return GuardConfig(
        settings=settings,
        interval_seconds=guard_interval,
        webhook_url=guard_webhook_url,
        metrics_port=metrics_port,
        retention_days=guard_retention_days,
    )
