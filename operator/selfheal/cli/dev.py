"""`selfheal dev`: the local environment of real parts (needs a source checkout and the [dev] extra)."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
def dev() -> None:
    """Local environment of real parts: kube-apiserver + etcd built from Go modules, embedded PostgreSQL."""


@dev.command("up")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False),
    envvar="SELFHEAL_STATE_DIR",
    default=None,
    help="Where processes keep data, logs and PIDs. [default ~/.local/state/selfheal/dev]",
)
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
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False),
    envvar="SELFHEAL_STATE_DIR",
    default=None,
    help="The state directory given to `dev up`.",
)
def dev_down(state_dir: str | None) -> None:
    """Stop everything `selfheal dev up` started; leaves no process or port behind."""
    from selfheal.devenv import environment

    environment.down(state_dir=Path(state_dir) if state_dir else None)
    click.echo("selfheal dev environment stopped", err=True)
