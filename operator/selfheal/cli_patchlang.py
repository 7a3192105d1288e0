"""`selfheal compile` and `selfheal check`: the patch compiler for people and pipelines.

Both run offline, with the same model, schema rules and compiler as the operator and its
admission webhook, so a GitOps pull request fails where the cluster would.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from selfheal.patchlang import DEFAULT_ALLOWED_HOSTS, MAX_CODE_CHARS, AllowedHosts, PatchCodeError, compile_patch
from selfheal.patchlang.operations import canonical_json

ALLOWED_HOSTS_HELP = (
    "Host a patch's base URL may point at (repeatable; exact name, or *.domain for every host below "
    f"domain). [env: SELFHEAL_ALLOWED_HOSTS, comma-separated; default: {','.join(DEFAULT_ALLOWED_HOSTS)}]"
)


def _allowed_hosts(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> AllowedHosts:
    entries = [entry for value in values for entry in value.split(",") if entry.strip()]
    try:
        return AllowedHosts.parse(entries or DEFAULT_ALLOWED_HOSTS)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def allowed_hosts_option(function):
    """`--allowed-host` (repeatable) / SELFHEAL_ALLOWED_HOSTS, passed on as `allowed_hosts`."""
    return click.option("--allowed-host", "allowed_hosts", multiple=True, metavar="HOST",
                        envvar="SELFHEAL_ALLOWED_HOSTS", callback=_allowed_hosts, help=ALLOWED_HOSTS_HELP)(function)


@click.command("compile")
@click.option("--language", "-l", type=click.Choice(["python", "node"]), required=True,
              help="SDK language the patch code is written in.")
@allowed_hosts_option
def compile_command(language: str, allowed_hosts: AllowedHosts) -> None:
    """Compile patch code from standard input to its operations (canonical JSON on stdout).

    \b
    Exit 1 with `line:column: reason` on stderr when the code is not a patch:
      echo 'self.base_url = "https://api-backup.molam.com"' | selfheal compile -l python
    """
    data = sys.stdin.buffer.read(4 * MAX_CODE_CHARS + 1)  # never read more than a patch can be
    try:
        code = data.decode("utf-8")
    except UnicodeDecodeError:
        code = None
    try:
        if code is None:
            raise PatchCodeError(1, 1, "input is not UTF-8 text")
        compiled = compile_patch(language=language, code=code, allowed_hosts=allowed_hosts)
    except PatchCodeError as error:
        click.echo(str(error), err=True)
        sys.exit(1)
    click.echo(canonical_json(compiled.document()))


@click.command("check")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@allowed_hosts_option
def check_command(paths: tuple[Path, ...], allowed_hosts: AllowedHosts) -> None:
    """Validate SelfHealPatch YAML files and folders offline (every document of every file).

    Folders are searched for *.yaml and *.yml. Other kinds of documents are skipped. Prints
    `file:line: field: reason` for each problem and exits 1 if there is any: run it on every
    pull request of a GitOps repository.
    """
    from selfheal.offline_check import check_file

    files = sorted({file for path in paths for file in _yaml_files(path)})
    problems = documents = 0
    for file in files:
        report = check_file(file, allowed_hosts=allowed_hosts)
        documents += report.documents
        problems += len(report.problems)
        for problem in report.problems:
            click.echo(f"{file}:{problem.line}: {problem.field}: {problem.reason}")
    click.echo(f"checked {documents} SelfHealPatch document(s) in {len(files)} file(s): "
               f"{problems or 'no'} problem(s)", err=True)
    sys.exit(1 if problems else 0)


def _yaml_files(path: Path) -> Iterator[Path]:
    if path.is_dir():
        yield from (file for file in path.rglob("*") if file.suffix in (".yaml", ".yml") and file.is_file())
    else:
        yield path



_WEBHOOK_OPTIONS = (
    click.option("--webhook-port", type=click.IntRange(0, 65535), default=0, envvar="SELFHEAL_WEBHOOK_PORT",
                 help="Serve the validating admission webhook on HTTPS at this port (0: off)."),
    click.option("--webhook-host", default="127.0.0.1", show_default=True, envvar="SELFHEAL_WEBHOOK_HOST",
                 help="Name or IP the API server calls the webhook at (in a cluster: the Service's DNS name)."),
    click.option("--webhook-listen", default="0.0.0.0", show_default=True, metavar="ADDRESS",
                 help="Address the webhook listens on."),
    click.option("--webhook-cert", type=click.Path(exists=True, dir_okay=False), envvar="SELFHEAL_WEBHOOK_CERT",
                 help="Serving certificate (PEM). Without it and --webhook-key, a private CA and certificate "
                      "for --webhook-host are generated at start."),
    click.option("--webhook-key", type=click.Path(exists=True, dir_okay=False), envvar="SELFHEAL_WEBHOOK_KEY",
                 help="Private key of --webhook-cert (PEM)."),
    click.option("--webhook-ca", type=click.Path(exists=True, dir_okay=False), envvar="SELFHEAL_WEBHOOK_CA",
                 help="CA bundle the API server trusts for the webhook (default: --webhook-cert)."),
    click.option("--webhook-configuration", metavar="NAME", envvar="SELFHEAL_WEBHOOK_CONFIGURATION",
                 help="Create or update this ValidatingWebhookConfiguration at start, pointed at this operator "
                      "(SelfHealPatch only, failurePolicy Fail). It stays when the operator stops, so "
                      "SelfHealPatch writes fail loudly while the webhook is down. Default: managed elsewhere."),
    click.option("--webhook-timeout", type=click.IntRange(1, 30), default=5, show_default=True, metavar="SECONDS",
                 help="timeoutSeconds of the webhook configuration."),
)


def webhook_options(function):
    """The `--webhook-*` options, passed on as one `webhook` argument (a WebhookConfig, or None when off)."""
    @functools.wraps(function)
    def with_webhook(*args, webhook_port: int, webhook_host: str, webhook_listen: str, webhook_cert: str | None,
                     webhook_key: str | None, webhook_ca: str | None, webhook_configuration: str | None,
                     webhook_timeout: int, **kwargs):
        from selfheal.controller.config import WebhookConfig

        if bool(webhook_cert) != bool(webhook_key):
            raise click.UsageError("--webhook-cert and --webhook-key go together")
        webhook = WebhookConfig(
            port=webhook_port, host=webhook_host, listen_address=webhook_listen, cert_file=webhook_cert,
            key_file=webhook_key, ca_file=webhook_ca, configuration_name=webhook_configuration,
            timeout_seconds=webhook_timeout,
        ) if webhook_port else None
        return function(*args, webhook=webhook, **kwargs)

    for option in reversed(_WEBHOOK_OPTIONS):
        with_webhook = option(with_webhook)
    return with_webhook
