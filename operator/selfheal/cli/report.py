"""`selfheal report …`: the runbook's SQL reports, its KPIs and its daily checklist.

Tables for people, `--format csv|json` for machines. Reports run the runbook's queries
unchanged unless a window, --as-of or a limit is given (see selfheal.registry.reports).
"""

from __future__ import annotations

import datetime
import sys

import click

from selfheal.cli.errors import SelfhealError
from selfheal.cli.options import database_url_option
from selfheal.cli.report_format import FORMATS, render
from selfheal.core.reports import checklist as daily
from selfheal.core.reports.kpis import kpi_table
from selfheal.core.reports.table import Table
from selfheal.core.reports.windows import describe_window, parse_window

# A century: far beyond any report the runbook asks for, and well inside what dates can hold.
MAX_WINDOW = datetime.timedelta(days=36500)


def _window(value: str | None) -> datetime.timedelta | None:
    return None if value is None else _required_window(value)


def _required_window(value: str) -> datetime.timedelta:
    try:
        window = parse_window(value)
    except OverflowError:  # more days than a timedelta holds
        window = None
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    if window is None or window > MAX_WINDOW:
        raise SelfhealError(
            f"--window {value} is too long: at most {MAX_WINDOW.days}d",
            hint="give a shorter window, e.g. --window 30d or --window 52w",
        )
    return window


def _as_of(value: datetime.datetime | None, window: datetime.timedelta | None = None) -> datetime.datetime | None:
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    if value is not None and window is not None and value - datetime.datetime.min.replace(tzinfo=datetime.UTC) < window:
        raise SelfhealError(
            f"--as-of {value.date().isoformat()} minus the window starts before year 1",
            hint="give a later --as-of or a shorter --window",
        )
    return value


def _format_option(default: str = "table"):
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(FORMATS),
        default=default,
        show_default=True,
        help="table for people; csv or json for machines.",
    )


_as_of_option = click.option(
    "--as-of",
    type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"]),
    default=None,
    metavar="TIMESTAMP",
    help="End of the window, e.g. 2025-06-15T12:00:00 (UTC unless an offset is given). Default: now. "
    "With it the window is (as-of - window, as-of], so a past report is reproducible.",
)


def _connect(database_url: str):
    """A connection; when the database is away, the `selfheal` group says so in one line, exit 2
    (1 is the checklist's "an item failed")."""
    import psycopg

    return psycopg.connect(database_url, autocommit=True)


def _emit(table: Table, output_format: str) -> None:
    click.echo(render(table, output_format), nl=False)


@click.group()
def report() -> None:
    """The runbook's reports, KPIs and daily checklist, from the registry.

    \b
    selfheal report top-patches          most used patches (7 days)
    selfheal report rollback-rates       rollback rate per patch (24 h, more than 10 applications)
    selfheal report developers           applications per developer (7 days)
    selfheal report unpatched-errors     errors without a patch (7 days)
    selfheal report failing-patches      failures per patch (1 hour)
    selfheal report rollbacks            latest rollbacks (24 h)
    selfheal report export               the 30-day CSV of applications
    selfheal report kpis                 application rate, rollback rate, MTTR, coverage, SDK adoption
    selfheal report checklist            the daily checklist, exit 1 when an item fails
    """


def _sql_report(name: str, summary: str, *, limit: bool = False, min_applications: bool = False):
    from selfheal.registry.reports import default_limit, default_window

    window_default = describe_window(default_window(name))

    def command(database_url: str, output_format: str, window: str | None, as_of, **extra) -> None:
        from selfheal.registry.reports import Period, run_report

        span = _window(window)
        as_of = _as_of(as_of, span or default_window(name))
        period = Period(window=span or default_window(name), as_of=as_of) if (span or as_of) else None
        with _connect(database_url) as conn:
            _emit(run_report(conn, name, period=period, **extra), output_format)

    command.__doc__ = (
        f"{summary}\n\nThe runbook's query, run unchanged with its window ({window_default}) "
        "unless --window or --as-of is given."
    )
    command = _format_option()(command)
    command = _as_of_option(command)
    command = click.option(
        "--window",
        default=None,
        metavar="DURATION",
        help=f"How far back, e.g. 90m, 24h, 7d. [default: {window_default}]",
    )(command)
    if limit:
        command = click.option(
            "--limit",
            type=click.IntRange(1, 100000),
            default=default_limit(name),
            show_default=True,
            help="At most this many rows.",
        )(command)
    if min_applications:
        command = click.option(
            "--min-applications",
            type=click.IntRange(0),
            default=10,
            show_default=True,
            help="Only patches with more applications than this in the window.",
        )(command)
    command = database_url_option(command)
    report.command(name)(command)


_sql_report(
    "top-patches",
    'Most used patches: applications and success rate (runbook: "Patches les plus utilisés").',
    limit=True,
)
_sql_report(
    "rollback-rates", 'Rollback rate per patch, in % (runbook: "Taux de rollback par patch").', min_applications=True
)
_sql_report("developers", 'Applications per developer and SDK (runbook: "Erreurs par développeur").', limit=True)
_sql_report(
    "unpatched-errors", 'Error patterns no patch answered (runbook: "Erreurs sans patch disponible").', limit=True
)
_sql_report("failing-patches", 'Failed applications per patch (runbook: "Identifier le patch problématique").')
_sql_report(
    "rollbacks", 'The latest rollbacks with their error and context (runbook: "Analyser les rollbacks").', limit=True
)


@report.command("export")
@database_url_option
@click.option("--window", default=None, metavar="DURATION", help="How far back. [default: 30d]")
@_as_of_option
@_format_option(default="csv")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write to this file instead of stdout.",
)
def export(database_url: str, window: str | None, as_of, output_format: str, output: str | None) -> None:
    """Applications of the last 30 days, the runbook's columns in its order.

    CSV is PostgreSQL's own (`COPY … TO STDOUT CSV HEADER`, booleans t/f), byte for byte what
    the runbook's psql command writes to patch_applications.csv.
    """
    from selfheal.registry.reports import Period, default_window, export_csv, run_report

    span = _window(window)
    as_of = _as_of(as_of, span or default_window("export"))
    period = Period(window=span or default_window("export"), as_of=as_of) if (span or as_of) else None
    stream = open(output, "wb") if output else sys.stdout.buffer
    try:
        with _connect(database_url) as conn:
            if output_format == "csv":
                export_csv(conn, period=period, write=stream.write)
            else:
                stream.write(render(run_report(conn, "export", period=period), output_format).encode())
    finally:
        if output:
            stream.close()
        else:
            stream.flush()


@report.command("kpis")
@database_url_option
@click.option("--window", default="7d", show_default=True, metavar="DURATION", help="How far back.")
@_as_of_option
@_format_option()
def kpis(database_url: str, window: str, as_of, output_format: str) -> None:
    """The runbook's KPIs over a window.

    \b
    application_rate  successful applications / applications (patch_applied), in %
    rollback_rate     rolled-back applications / applications, in %
    mttr              mean seconds from the first unpatched occurrence of an error (same
                      language, message equal to or starting with the patch's signature) to
                      the first successful application of its patch, over patches first
                      healed in the window
    coverage          SDK errors answered by a patch / all SDK errors reported, in %
    sdk_adoption      developers whose SDK called self-heal in the window / those plus
                      holders of a live `developer` token, in %
    """
    from selfheal.registry.reports import Period, window_figures

    span = _required_window(window)
    period = Period(window=span, as_of=_as_of(as_of, span))
    with _connect(database_url) as conn:
        figures = window_figures(conn, period)
    _emit(kpi_table(figures), output_format)


@report.command("checklist")
@database_url_option
@click.option("--window", default="24h", show_default=True, metavar="DURATION", help="The day the checklist looks at.")
@_as_of_option
@click.option(
    "--min-success-rate",
    type=click.FloatRange(0, 100),
    default=90.0,
    show_default=True,
    help="The success rate must be above this, in %.",
)
@click.option(
    "--max-rollback-rate",
    type=click.FloatRange(0, 100),
    default=10.0,
    show_default=True,
    help="The rollback rate must be below this, in %.",
)
@click.option(
    "--review-threshold",
    type=click.IntRange(0),
    default=100,
    show_default=True,
    help="Patches applied more often than this in the window are listed for review.",
)
@click.option(
    "--prometheus-url",
    envvar="SELFHEAL_PROMETHEUS_URL",
    default=None,
    metavar="URL",
    help="Ask this Prometheus for firing alerts (/api/v1/alerts); without it the item is 'not checked'.",
)
@click.option(
    "--alert-match",
    default="^selfheal",
    show_default=True,
    metavar="REGEX",
    help="Alerts that count: alertname matching this (case-insensitive).",
)
@_format_option()
def checklist(
    database_url: str,
    window: str,
    as_of,
    min_success_rate: float,
    max_rollback_rate: float,
    review_threshold: int,
    prometheus_url: str | None,
    alert_match: str,
    output_format: str,
) -> None:
    """The runbook's daily checklist: each item with its figure and pass or fail.

    \b
    Exit status: 0 when no item fails, 1 when at least one does (someone must act), 2 on a
    usage or connection error. Items that cannot be checked from here say "not checked" and
    do not fail: Prometheus alerts without --prometheus-url, and the weekly export.
    """
    from selfheal.registry.reports import Period, busy_patches, new_error_patterns, window_figures
    from selfheal.services.prometheus import query_firing_alerts

    span = _required_window(window)
    period = Period(window=span, as_of=_as_of(as_of, span))
    with _connect(database_url) as conn:
        figures = window_figures(conn, period)
        busy = busy_patches(conn, period, threshold=review_threshold)
        new = new_error_patterns(conn, period)
    alerts, alerts_error = (None, None)
    if prometheus_url:
        alerts, alerts_error = query_firing_alerts(prometheus_url, alert_match, timeout=10)
    items = daily.checklist(
        daily.ChecklistInput(
            window=period.window,
            figures=figures,
            busy_patches=busy,
            new_patterns=new,
            alerts=alerts,
            alerts_error=alerts_error,
            min_success_rate=min_success_rate,
            max_rollback_rate=max_rollback_rate,
            review_threshold=review_threshold,
        )
    )
    _emit(daily.checklist_table(items), output_format)
    if daily.checklist_failed(items):
        sys.exit(1)
