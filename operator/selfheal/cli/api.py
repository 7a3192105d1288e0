"""`selfheal api`, `selfheal token …` and `selfheal keygen`: the registry API and its credentials."""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

import click

from selfheal.cli.errors import SelfhealError
from selfheal.cli.logs import configure_logging, log_format_option
from selfheal.cli.options import allowed_hosts_option, database_url_option
from selfheal.core.patchlang import AllowedHosts
from selfheal.core.signing import SigningKey


def _networks(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple:
    from selfheal.api.client_address import parse_networks

    try:
        return parse_networks([entry for value in values for entry in value.split(",") if entry.strip()])
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


@click.command()
@database_url_option
@click.option(
    "--signing-key",
    "signing_key_file",
    envvar="SELFHEAL_SIGNING_KEY_FILE",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Ed25519 private key (PEM) that signs patch envelopes; a mounted Secret in Kubernetes. "
    "Create one with `selfheal keygen`.",
)
@click.option("--host", default="0.0.0.0", show_default=True, envvar="SELFHEAL_API_HOST")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8140,
    show_default=True,
    envvar="SELFHEAL_API_PORT",
    help="TCP port to serve on. 0: any free port; whichever port is bound is logged once listening "
    "(`listening on http://HOST:PORT`).",
)
@click.option(
    "--envelope-ttl",
    type=click.IntRange(10, 86400),
    default=300,
    show_default=True,
    metavar="SECONDS",
    help="How long an SDK may use a patch envelope before asking again.",
)
@click.option(
    "--rate",
    type=click.FloatRange(0.1, 100000),
    default=50.0,
    show_default=True,
    envvar="SELFHEAL_API_RATE",
    help="Requests per second allowed per token (burst: twice that).",
)
@click.option(
    "--address-rate",
    type=click.FloatRange(0.1, 100000),
    default=200.0,
    show_default=True,
    envvar="SELFHEAL_API_ADDRESS_RATE",
    help="Requests per second allowed per client address, before authentication (burst: twice that). "
    "The address is the connection's peer (an IPv6 client by its /64), or behind a --trusted-proxy the "
    "client it names in X-Forwarded-For.",
)
@click.option(
    "--trusted-proxy",
    "trusted_proxies",
    multiple=True,
    metavar="CIDR",
    envvar="SELFHEAL_TRUSTED_PROXIES",
    callback=_networks,
    help="A proxy or ingress whose X-Forwarded-For header names the client for --address-rate (repeatable; "
    "environment: comma-separated). Without it, no forwarding header is believed.",
)
@click.option(
    "--max-body",
    type=click.IntRange(1024, 10 * 1024 * 1024),
    default=64 * 1024,
    show_default=True,
    metavar="BYTES",
    help="Largest request body accepted; larger ones get 413.",
)
@click.option(
    "--patch-namespace",
    envvar="SELFHEAL_PATCH_NAMESPACE",
    default=None,
    metavar="NS",
    help="Namespace where POST /api/dev/patches creates SelfHealPatch resources (cluster from the "
    "usual kubeconfig rules). Unset: that route answers 501.",
)
@click.option(
    "--outcome-buffer",
    "--report-buffer",
    "outcome_buffer",
    type=click.IntRange(1000, 10_000_000),
    default=100_000,
    show_default=True,
    metavar="ROWS",
    envvar=["SELFHEAL_OUTCOME_BUFFER", "SELFHEAL_REPORT_BUFFER"],
    help="Outcomes SDKs report, held in memory while PostgreSQL is away or behind (and at most 64 MiB "
    "of them); beyond, outcome batches wait up to 2 s, then get 503 and the SDKs keep them. "
    "--report-buffer is the older name.",
)
@allowed_hosts_option
@click.option("--migrate/--no-migrate", default=True, show_default=True, help="Apply the registry schema at start.")
@log_format_option
def api(
    database_url: str,
    signing_key_file: Path,
    host: str,
    port: int,
    envelope_ttl: int,
    rate: float,
    address_rate: float,
    trusted_proxies: tuple,
    max_body: int,
    patch_namespace: str | None,
    outcome_buffer: int,
    migrate: bool,
    allowed_hosts: AllowedHosts,
    log_format: str,
) -> None:
    """Serve the registry API: POST /api/dev/self-heal, outcomes, GET /api/dev/patches, /metrics.

    Patches are served from memory, refreshed by PostgreSQL LISTEN/NOTIFY; while PostgreSQL is
    away, lookups keep serving the last good set and reports are buffered.
    """
    from aiohttp import web

    from selfheal.api.app import ApiSettings, build_app

    key = _signing_key(signing_key_file)
    configure_logging(log_format)
    if migrate:
        from selfheal.registry.migrate import migrate as apply

        apply(database_url)
    logging.getLogger("selfheal.api").info("signing with key id %s", key.key_id)
    settings = ApiSettings(
        database_url=database_url,
        signing_key=key,
        envelope_ttl_seconds=envelope_ttl,
        max_body_bytes=max_body,
        rate_per_second=rate,
        rate_burst=max(1, int(rate * 2)),
        address_rate_per_second=address_rate,
        address_burst=max(1, int(address_rate * 2)),
        trusted_proxies=trusted_proxies,
        allowed_hosts=allowed_hosts,
        patch_namespace=patch_namespace,
        outcome_buffer=outcome_buffer,
        json_logs=log_format == "json",
    )
    listener = _listen(host, port)
    logging.getLogger("selfheal.api").info("listening on http://%s:%d", host, listener.getsockname()[1])
    web.run_app(build_app(settings), sock=listener, print=None, access_log=None)


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound here rather than by aiohttp so that the port bound (any free one
    for --port 0) can be logged: whoever starts the API learns it without picking one first."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
        return socket.create_server((host, port), family=family, backlog=128)
    except OSError as error:
        raise SelfhealError(
            f"--host {host} --port {port}: cannot listen there ({error.strerror or error})",
            hint="another process may hold the port; --port 0 takes any free one",
        ) from None


def _signing_key(path: Path) -> SigningKey:

    try:
        return SigningKey.from_pem(path.read_bytes())
    except (ValueError, TypeError) as error:
        raise SelfhealError(
            f"--signing-key {path} is not an unencrypted Ed25519 private key in PEM ({error})",
            hint="create one with `selfheal keygen --out FILE`",
        ) from None


@click.command()
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the private key (PEM, mode 0600). Refuses to overwrite.",
)
def keygen(out: Path) -> None:
    """Create an Ed25519 signing key for `selfheal api`; prints its public key and key id."""

    if out.exists():
        raise click.ClickException(f"{out} exists; refusing to overwrite a signing key")
    key = SigningKey.generate()
    descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(key.private_pem())
    click.echo(key.public_pem().decode().strip())
    click.echo(f"key id: {key.key_id}", err=True)


@click.group()
def token() -> None:
    """API tokens for SDKs and admins (stored hashed; roles developer and dev_admin)."""


@token.command("create")
@database_url_option
@click.option("--developer", "developer_id", required=True, help="Developer id recorded with every report.")
@click.option("--role", type=click.Choice(["developer", "dev_admin"]), default="developer", show_default=True)
@click.option("--description", default=None, help="Free text: who or what uses this token.")
def token_create(database_url: str, developer_id: str, role: str, description: str | None) -> None:
    """Create a token and print it once on stdout (its id goes to stderr)."""
    from selfheal.registry.tokens import create_token

    token_id, secret = create_token(database_url, developer_id=developer_id, role=role, description=description)
    click.echo(f"token id {token_id} for {developer_id} ({role}); it is shown only now", err=True)
    click.echo(secret)


@token.command("revoke")
@database_url_option
@click.argument("token_id")
def token_revoke(database_url: str, token_id: str) -> None:
    """Revoke a token by its id (or by the token itself). Takes effect within the API's token cache (10 s)."""
    from selfheal.registry.tokens import revoke_token

    if not revoke_token(database_url, token_id=token_id):
        raise click.ClickException(f"no live token with id {token_id}")
    click.echo(f"revoked {token_id}", err=True)
