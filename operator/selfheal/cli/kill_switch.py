"""`selfheal disable` / `selfheal enable`: the incident kill switch and its reversal.

The kill switch never writes spec (Git owns it): it sets an annotation that the operator keeps
enforcing, and, given a database URL, switches the registry row off at once in the same way
the guard does (reason ManualKillSwitch, audit row), so it acts even with the operator down.
"""

from __future__ import annotations

import asyncio
import datetime
import getpass
from collections.abc import Awaitable, Callable

import click

from selfheal.cli.options import optional_database_url_option
from selfheal.services import kube


def _target(patch: str, namespace: str | None) -> tuple[str, str]:
    if "/" in patch:
        namespace, patch = patch.split("/", 1)
    return namespace or kube.context_namespace(), patch


def _in_registry(database_url: str | None, action: Callable[..., Awaitable[bool]], **arguments: str) -> bool:
    """Run one kill-switch action on the registry; False when no database URL was given."""
    if not database_url:
        return False
    import psycopg

    async def run() -> bool:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            return await action(conn, **arguments)

    return asyncio.run(run())


def _common(function: Callable[..., None]) -> Callable[..., None]:
    for option in reversed(
        [
            click.argument("patch", metavar="[NAMESPACE/]NAME"),
            click.option(
                "--namespace",
                "-n",
                default=None,
                help="Namespace of the SelfHealPatch. [default: the kubeconfig context's namespace, else default]",
            ),
            optional_database_url_option(
                "Optional: with it the registry changes at once, even with the operator down."
            ),
        ]
    ):
        function = option(function)
    return function


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


@click.command()
@_common
@click.option("--reason", required=True, help="Why, for the audit trail and the status message.")
def disable(patch: str, namespace: str | None, database_url: str | None, reason: str) -> None:
    """Kill switch: stop serving a patch now (status + registry, never spec).

    Sets the annotation selfheal.molam.io/disable; the operator keeps the patch off while it
    is there, whatever happens to the spec. `selfheal enable` is the way back.
    """
    from selfheal.services import kill_switch

    namespace, name = _target(patch, namespace)
    kill_switch.annotate(namespace, name, kill_switch.disable_annotations(reason))
    done = _in_registry(
        database_url, kill_switch.switch_off_resource, namespace=namespace, name=name, actor=_actor(), reason=reason
    )
    where = "registry row switched off" if done else "the operator switches the registry row off"
    click.echo(f"{namespace}/{name}: disabled ({where}): {reason}")


@click.command()
@_common
def enable(patch: str, namespace: str | None, database_url: str | None) -> None:
    """Undo `selfheal disable` or a guard deactivation: serve the patch again (never writes spec),
    to every developer, those the guard switched it off for alone included.

    Removes the disable annotation and sets selfheal.molam.io/reactivate to a new token.
    Patches off because of their spec (active false, invalid, deleted) need a spec change.
    """
    from selfheal.services import kill_switch

    namespace, name = _target(patch, namespace)
    token = kill_switch.reactivation_token(datetime.datetime.now(datetime.UTC))
    kill_switch.annotate(namespace, name, kill_switch.enable_annotations(token))
    done = _in_registry(
        database_url, kill_switch.switch_on_resource, namespace=namespace, name=name, actor=_actor(), token=token
    )
    click.echo(f"{namespace}/{name}: enabled ({'registry row active' if done else 'the operator reactivates it'})")
