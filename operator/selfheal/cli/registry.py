"""`selfheal migrate`: the registry schema."""

from __future__ import annotations

import click

from selfheal.cli.options import database_url_option


@click.command()
@database_url_option
def migrate(database_url: str) -> None:
    """Apply the registry schema (versioned migrations, each applied once).

    Safe to run any number of times and from several processes at once. The operator also
    runs it at start unless --no-migrate is given.
    """
    from selfheal.registry.migrate import available_migrations
    from selfheal.registry.migrate import migrate as apply

    applied = apply(database_url)
    for migration in applied:
        click.echo(f"applied {migration.number:04d}_{migration.name}")
    latest = available_migrations()[-1]
    click.echo(f"registry schema is at {latest.number:04d}_{latest.name}" + ("" if applied else " (nothing to do)"))
