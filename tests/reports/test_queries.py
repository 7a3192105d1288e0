"""The reports' SQL is the runbook's: one file in the package, checked against the runbook itself."""

from __future__ import annotations

import datetime
import re

from selfheal.registry.reports import Period, default_window, render, runbook_queries
from tests.runbook import psql_commands, sql_statements


def _words(sql: str) -> str:
    return " ".join(re.sub(r"^\s*--.*$", "", sql, flags=re.M).split()).rstrip(";").strip()


def _runbook_queries() -> set[str]:
    queries = {_words(statement) for statement in sql_statements()}
    for argv in psql_commands():
        text = argv[-1]
        copy = re.search(r"COPY \((.*)\) TO STDOUT", text, flags=re.S)
        queries.add(_words(copy.group(1) if copy else text))
    return queries


def test_every_report_query_is_the_runbooks_text():
    queries = runbook_queries()
    assert list(queries) == [
        "top-patches",
        "rollback-rates",
        "developers",
        "unpatched-errors",
        "failing-patches",
        "rollbacks",
        "export",
    ]
    runbook = _runbook_queries()
    for name, text in queries.items():
        assert _words(text) in runbook, name


def test_without_overrides_the_query_is_sent_unchanged():
    for name, text in runbook_queries().items():
        assert render(name) == (text, None)
        assert render(name, limit=None, min_applications=10 if name == "rollback-rates" else None) == (text, None)


def test_a_window_only_rewrites_the_time_bound():
    text, params = render("developers", period=Period(window=datetime.timedelta(days=1)), limit=5)
    assert "applied_at > %(start)s AND applied_at <= %(end)s" in text
    assert "NOW()" not in text and "LIMIT %(limit)s" in text
    assert _words(text).replace(
        "applied_at > %(start)s AND applied_at <= %(end)s", "applied_at > NOW() - INTERVAL '7 days'"
    ).replace("%(limit)s", "20") == _words(runbook_queries()["developers"])
    assert params == {"window": datetime.timedelta(days=1), "limit": 5}


def test_default_windows_are_the_runbooks():
    assert {name: default_window(name) for name in runbook_queries()} == {
        "top-patches": datetime.timedelta(days=7),
        "rollback-rates": datetime.timedelta(hours=24),
        "developers": datetime.timedelta(days=7),
        "unpatched-errors": datetime.timedelta(days=7),
        "failing-patches": datetime.timedelta(hours=1),
        "rollbacks": datetime.timedelta(hours=24),
        "export": datetime.timedelta(days=30),
    }
