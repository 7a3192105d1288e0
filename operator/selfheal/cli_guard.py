"""`selfheal disable` / `selfheal enable` (incident kill switch) and the guard's operator options.

The kill switch never writes spec (Git owns it): it sets an annotation that the operator keeps
enforcing, and, given a database URL, switches the registry row off at once in the same way
the guard does (reason ManualKillSwitch, audit row), so it acts even with the operator down.
"""

from __future__ import annotations

import asyncio
import datetime
import getpass
import uuid

import click



def guard_options(function):
    """The guard's settings on `selfheal operator`; `guard_config(**values)` builds them."""
    options = [
        click.option("--guard-interval", type=click.FloatRange(0.2, 300), default=2.0, show_default=True,
                     envvar="SELFHEAL_GUARD_INTERVAL", metavar="SECONDS",
                     help="How often the guard evaluates every patch with recent traffic."),
        click.option("--guard-min-samples", type=click.IntRange(5, 100000), default=20, show_default=True,
                     envvar="SELFHEAL_GUARD_MIN_SAMPLES",
                     help="Fewer applications in a rule's window is Inconclusive, never a deactivation."),
        click.option("--guard-early-cutoff/--no-guard-early-cutoff", default=True, show_default=True,
                     envvar="SELFHEAL_GUARD_EARLY_CUTOFF",
                     help="Deactivate before `for:` when a confidence bound proves the rate above its threshold."),
        click.option("--guard-early-confidence", type=click.FloatRange(0.9, 0.999999), default=0.999,
                     show_default=True, envvar="SELFHEAL_GUARD_EARLY_CONFIDENCE",
                     help="Confidence of the Wilson interval used by the early cut-off."),
        click.option("--guard-volume-deactivates", is_flag=True, envvar="SELFHEAL_GUARD_VOLUME_DEACTIVATES",
                     help="The volume rule (> 100 applications/min for 10 min) deactivates instead of warning."),
        click.option("--guard-regression/--no-guard-regression", default=True, show_default=True,
                     envvar="SELFHEAL_GUARD_REGRESSION",
                     help="The Regression rule: a CUSUM of each patch's failure rate against its own 24 h baseline."),
        click.option("--guard-regression-factor", type=click.FloatRange(1.5, 20), default=3.0, show_default=True,
                     envvar="SELFHEAL_GUARD_REGRESSION_FACTOR",
                     help="The Regression rule is tuned to catch failures at this multiple of the baseline."),
        click.option("--guard-regression-deactivates", is_flag=True, envvar="SELFHEAL_GUARD_REGRESSION_DEACTIVATES",
                     help="The Regression rule deactivates instead of warning."),
        click.option("--guard-webhook-url", default=None, envvar="SELFHEAL_GUARD_WEBHOOK_URL", metavar="URL",
                     help="POST a Slack-compatible JSON message on every deactivation and warning."),
        click.option("--guard-retention-days", type=click.IntRange(0, 3650), default=90, show_default=True,
                     envvar="SELFHEAL_GUARD_RETENTION_DAYS",
                     help="Drop daily partitions of sdk_patch_applications older than this (0: keep all)."),
        click.option("--metrics-port", type=click.IntRange(0, 65535), default=0, envvar="SELFHEAL_METRICS_PORT",
                     help="Serve Prometheus metrics on http://0.0.0.0:PORT/metrics (0: off)."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def guard_config(*, guard_interval: float, guard_min_samples: int, guard_early_cutoff: bool,
                 guard_early_confidence: float, guard_volume_deactivates: bool, guard_webhook_url: str | None,
                 guard_retention_days: int, metrics_port: int, guard_regression: bool = True,
                 guard_regression_factor: float = 3.0, guard_regression_deactivates: bool = False):
    from selfheal.controller.config import GuardConfig
    from selfheal.guard.rules import VOLUME_RULE, GuardSettings, RegressionSettings

    settings = GuardSettings(min_samples=guard_min_samples, early_cutoff=guard_early_cutoff,
                             early_confidence=guard_early_confidence,
                             regression=RegressionSettings(enabled=guard_regression, factor=guard_regression_factor,
                                                           deactivate=guard_regression_deactivates))
    if guard_volume_deactivates:
        settings = settings.with_rule(VOLUME_RULE, action="deactivate")
    return GuardConfig(settings=settings, interval_seconds=guard_interval, webhook_url=guard_webhook_url,
                       metrics_port=metrics_port, retention_days=guard_retention_days)


def _target(patch: str, namespace: str) -> tuple[str, str]:
    return tuple(patch.split("/", 1)) if "/" in patch else (namespace, patch)  # type: ignore[return-value]


def _annotate(namespace: str, name: str, annotations: dict[str, str | None]) -> None:
    from selfheal import GROUP, PLURAL, VERSION, kube

    kube.custom_objects().patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name, {"metadata": {"annotations": annotations}})


def _registry(database_url: str | None, action) -> object:
    if not database_url:
        return None
    import psycopg

    from selfheal.registry import guard_store

    async def run():
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            return await action(conn, guard_store)
    return asyncio.run(run())


_common = [
    click.argument("patch", metavar="[NAMESPACE/]NAME"),
    click.option("--namespace", "-n", default="default", show_default=True, help="Namespace of the SelfHealPatch."),
    click.option("--database-url", envvar="SELFHEAL_DATABASE_URL", default=None, metavar="URL",
                 help="PostgreSQL URL of the registry. Optional: with it the registry changes at once, even with "
                      "the operator down. [env: SELFHEAL_DATABASE_URL]"),
]


def _with_common(function):
    for option in reversed(_common):
        function = option(function)
    return function


@click.command()
@_with_common
@click.option("--reason", required=True, help="Why, for the audit trail and the status message.")
def disable(patch: str, namespace: str, database_url: str | None, reason: str) -> None:
    """Kill switch: stop serving a patch now (status + registry, never spec).

    Sets the annotation selfheal.molam.io/disable; the operator keeps the patch off while it
    is there, whatever happens to the spec. `selfheal enable` is the way back.
    """
    from selfheal.controller.guard_loop import ANNOTATION_DISABLE
    from selfheal.status import REASON_MANUAL_KILL_SWITCH

    namespace, name = _target(patch, namespace)
    _annotate(namespace, name, {ANNOTATION_DISABLE: reason})
    actor = f"cli:{getpass.getuser()}"

    async def switch_off(conn, guard_store):
        patch_id = await guard_store.patch_id_for(conn, namespace=namespace, name=name)
        if patch_id is None:
            return None
        return await guard_store.deactivate(conn, patch_id=patch_id, reason=REASON_MANUAL_KILL_SWITCH, actor=actor,
                                            message=f"kill switch by {actor}: {reason}",
                                            details={"reason": reason, "by": actor})
    done = _registry(database_url, switch_off)
    where = "registry row switched off" if done else "the operator switches the registry row off"
    click.echo(f"{namespace}/{name}: disabled ({where}): {reason}")


@click.command()
@_with_common
def enable(patch: str, namespace: str, database_url: str | None) -> None:
    """Undo `selfheal disable` or a guard deactivation: serve the patch again (never writes spec).

    Removes the disable annotation and sets selfheal.molam.io/reactivate to a new token.
    Patches off because of their spec (active false, invalid, deleted) need a spec change.
    """
    from selfheal.controller.guard_loop import ANNOTATION_DISABLE, ANNOTATION_REACTIVATE

    namespace, name = _target(patch, namespace)
    token = f"{datetime.datetime.now(datetime.timezone.utc):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
    _annotate(namespace, name, {ANNOTATION_DISABLE: None, ANNOTATION_REACTIVATE: token})
    actor = f"cli:{getpass.getuser()}"

    async def switch_on(conn, guard_store):
        patch_id = await guard_store.patch_id_for(conn, namespace=namespace, name=name)
        return patch_id is not None and await guard_store.reactivate(conn, patch_id=patch_id, actor=actor, token=token)
    done = _registry(database_url, switch_on)
    click.echo(f"{namespace}/{name}: enabled ({'registry row active' if done else 'the operator reactivates it'})")
