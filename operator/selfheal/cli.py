"""The `selfheal` command: one entry point for people and pipelines."""

from __future__ import annotations

from pathlib import Path

import click

from selfheal.cli_patchlang import allowed_hosts_option, webhook_options
from selfheal.controller.config import WebhookConfig
from selfheal.patchlang import AllowedHosts

from selfheal.cli_guard import disable, enable, guard_config, guard_options

DATABASE_URL_HELP = "PostgreSQL URL of the registry, e.g. postgresql://user@host:5432/molam_connect."


def _database_url_option(function):
    return click.option(
        "--database-url", envvar="SELFHEAL_DATABASE_URL", required=True, metavar="URL",
        help=f"{DATABASE_URL_HELP} [env: SELFHEAL_DATABASE_URL]",
    )(function)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="selfheal")
def main() -> None:
    """Self-healing SDK patches: SelfHealPatch resources, their operator and their registry.

    \b
    Quick start on a fresh machine:
      eval "$(selfheal dev up)"      # API server, etcd, PostgreSQL, CRD installed
      selfheal operator              # validate and sync SelfHealPatch resources
      kubectl get shp
    """


@main.command()
@_database_url_option
def migrate(database_url: str) -> None:
    """Apply the registry schema (versioned migrations, each applied once).

    Safe to run any number of times and from several processes at once. The operator also
    runs it at start unless --no-migrate is given.
    """
    from selfheal.registry.migrate import available_migrations, migrate as apply

    applied = apply(database_url)
    for migration in applied:
        click.echo(f"applied {migration.number:04d}_{migration.name}")
    latest = available_migrations()[-1]
    click.echo(f"registry schema is at {latest.number:04d}_{latest.name}" + ("" if applied else " (nothing to do)"))


@main.command()
@_database_url_option
@click.option("--namespace", "-n", "namespaces", multiple=True, metavar="NS",
              envvar="SELFHEAL_NAMESPACES", help="Watch only these namespaces (repeatable). Default: all namespaces.")
@click.option("--registry-poll-interval", type=click.FloatRange(0.2, 300), default=2.0, show_default=True,
              envvar="SELFHEAL_REGISTRY_POLL_INTERVAL", metavar="SECONDS",
              help="How often changes made to the registry outside the operator are picked up.")
@click.option("--migrate/--no-migrate", default=True, show_default=True,
              help="Apply the registry schema at start.")
@click.option("--liveness-port", type=click.IntRange(0, 65535), default=0, envvar="SELFHEAL_LIVENESS_PORT",
              help="Serve kopf's liveness probe on http://0.0.0.0:PORT/healthz (0: off).")
@click.option("--verbose", "-v", is_flag=True, help="Debug logging.")
@allowed_hosts_option
@webhook_options
@guard_options
def operator(database_url: str, namespaces: tuple[str, ...], registry_poll_interval: float, migrate: bool,
             liveness_port: int, verbose: bool, allowed_hosts: AllowedHosts,
             webhook: WebhookConfig | None, **guard) -> None:
    """Run the operator: validate SelfHealPatch resources and sync them into the registry.

    The cluster comes from the usual kubeconfig rules (KUBECONFIG, ~/.kube/config, then the
    in-cluster service account). Runs until interrupted.
    """
    from selfheal.controller.config import OperatorConfig
    from selfheal.controller.run import run_operator

    config = OperatorConfig(database_url=database_url, registry_poll_seconds=registry_poll_interval,
                            run_migrations=migrate, allowed_hosts=allowed_hosts,
                            webhook=webhook, guard=guard_config(**guard))
    run_operator(config=config, namespaces=namespaces, liveness_port=liveness_port or None, debug=verbose)


@main.group()
def dev() -> None:
    """Local environment of real parts: kube-apiserver + etcd built from Go modules, embedded PostgreSQL."""


@dev.command("up")
@click.option("--state-dir", type=click.Path(file_okay=False), envvar="SELFHEAL_STATE_DIR", default=None,
              help="Where processes keep data, logs and PIDs. [env: SELFHEAL_STATE_DIR; default ~/.local/state/selfheal/dev]")
def dev_up(state_dir: str | None) -> None:
    """Start (building what is missing) and print `export` lines: eval "$(selfheal dev up)".

    Progress goes to stderr; stdout holds only the export lines. A second run finds the
    environment up and prints the same lines. The first run builds kube-apiserver, etcd and
    kubectl from Go modules (about 5 minutes on 2 cores); later runs reuse the cache.
    """
    from selfheal.devenv import environment

    env = environment.up(state_dir=Path(state_dir) if state_dir else None)
    click.echo(environment.export_lines(env))


@dev.command("build")
def dev_build() -> None:
    """Build kube-apiserver, etcd and kubectl from Go modules if missing (cached).

    The cache is $SELFHEAL_CACHE_DIR (default ~/.cache/selfheal). `dev up` does this too;
    run it alone to pay the first build (about 5 minutes on 2 cores) ahead of time.
    """
    from selfheal.devenv.build import ensure_binaries

    binaries = ensure_binaries()
    click.echo(f"control plane binaries ready in {binaries.kubectl.parent}", err=True)


@dev.command("down")
@click.option("--state-dir", type=click.Path(file_okay=False), envvar="SELFHEAL_STATE_DIR", default=None,
              help="The state directory given to `dev up`.")
def dev_down(state_dir: str | None) -> None:
    """Stop everything `selfheal dev up` started; leaves no process or port behind."""
    from selfheal.devenv import environment

    environment.down(state_dir=Path(state_dir) if state_dir else None)
    click.echo("selfheal dev environment stopped", err=True)


def _register_subcommands() -> None:
    from selfheal.cli_api import api, keygen, token

    for command in (api, keygen, token):
        main.add_command(command)


_register_subcommands()


def _register_patchlang_commands() -> None:
    from selfheal.cli_patchlang import check_command, compile_command

    main.add_command(compile_command)
    main.add_command(check_command)


_register_patchlang_commands()


main.add_command(disable)
main.add_command(enable)


def _register_report_commands() -> None:
    from selfheal.cli_report import report

    main.add_command(report)


_register_report_commands()
