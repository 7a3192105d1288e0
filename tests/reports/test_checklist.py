"""`selfheal report checklist`: the runbook's daily checklist, pass and fail, with a real Prometheus."""

from __future__ import annotations

import csv
import io

import pytest

from tests.prometheus_server import prometheus as prometheus_server
from tests.reports.conftest import QUIET_DAY, report
from tests.support import refused_port


def _items(rows):
    return {row["item"].split(" (")[0]: row for row in rows}


def test_a_bad_day_fails_with_the_figures(seeded):
    rows = report(seeded, "checklist", expect_exit=1)
    items = _items(rows)
    assert list(items) == [
        "success rate > 90 %",
        "rollback rate < 10 %",
        "patches applied > 100 times",
        "new error patterns without a patch",
        "Prometheus alerts",
        "weekly export for analysis",
    ]
    assert (items["success rate > 90 %"]["figure"], items["success rate > 90 %"]["status"]) == ("87.59 %", "fail")
    assert items["success rate > 90 %"]["detail"] == "127 / 145"
    assert (items["rollback rate < 10 %"]["figure"], items["rollback rate < 10 %"]["status"]) == ("7.59 %", "pass")
    busy = items["patches applied > 100 times"]
    assert (busy["figure"], busy["status"], busy["detail"]) == (
        "1 patch",
        "fail",
        "p-econn 'Fallback vers API de backup': 120",
    )
    new = items["new error patterns without a patch"]
    # ETIMEDOUT was already seen 5 days ago; the ECONNREFUSED and 401 errors have patches now.
    assert (new["figure"], new["status"], new["detail"]) == ("1 pattern", "fail", "python 'KeyError: amount': 4")
    assert (items["Prometheus alerts"]["status"], items["Prometheus alerts"]["figure"]) == (
        "not checked",
        "not checked",
    )
    assert items["weekly export for analysis"]["detail"] == "selfheal report export > patch_applications.csv"


def test_a_good_day_passes(seeded):
    rows = report(seeded, "checklist", as_of=QUIET_DAY)
    assert [row["status"] for row in rows] == ["pass", "pass", "pass", "pass", "not checked", "not checked"]
    assert rows[0]["figure"] == "100.00 %" and rows[1]["figure"] == "0.00 %"


def test_thresholds_are_options(seeded):
    rows = report(seeded, "checklist", "--min-success-rate", "85", "--review-threshold", "200", expect_exit=1)
    items = _items(rows)
    assert items["success rate > 85 %"]["status"] == "pass"
    assert items["patches applied > 200 times"]["status"] == "pass"
    assert items["new error patterns without a patch"]["status"] == "fail"


def test_csv_and_table_formats(seeded):
    rows = list(csv.DictReader(io.StringIO(report(seeded, "checklist", fmt="csv", expect_exit=1))))
    assert [row["status"] for row in rows] == ["fail", "pass", "fail", "fail", "not checked", "not checked"]
    table = report(seeded, "checklist", fmt="table", as_of=QUIET_DAY)
    assert table.splitlines()[0].split() == ["item", "figure", "threshold", "status", "detail"]
    assert "success rate > 90 % (24h)" in table and "(6 rows)" in table


RULES = """
groups:
  - name: test
    interval: 1s
    rules:
      - alert: SelfHealHighRollbackRate
        expr: vector(1)
      - alert: SomeoneElsesAlert
        expr: vector(1)
      - alert: SelfHealNeverFires
        expr: vector(1) > 2
"""


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    """A real Prometheus evaluating a rule that fires at once."""
    with prometheus_server(tmp_path_factory.mktemp("prometheus"), RULES, wait_for_firing=True) as url:
        yield url


def test_firing_selfheal_alerts_fail_the_checklist(seeded, prometheus):
    rows = report(seeded, "checklist", "--prometheus-url", prometheus, as_of=QUIET_DAY, expect_exit=1)
    alerts = _items(rows)["Prometheus alerts"]
    assert (alerts["figure"], alerts["status"], alerts["detail"]) == ("1 firing", "fail", "SelfHealHighRollbackRate")


def test_no_matching_alert_firing_passes(seeded, prometheus):
    rows = report(
        seeded, "checklist", "--prometheus-url", prometheus, "--alert-match", "^SelfHealNever", as_of=QUIET_DAY
    )
    assert (_items(rows)["Prometheus alerts"]["figure"], _items(rows)["Prometheus alerts"]["status"]) == (
        "0 firing",
        "pass",
    )


def test_unreachable_prometheus_fails_rather_than_passes(seeded):
    with refused_port() as port:
        url = f"http://127.0.0.1:{port}"
        rows = report(seeded, "checklist", "--prometheus-url", url, as_of=QUIET_DAY, expect_exit=1)
    alerts = _items(rows)["Prometheus alerts"]
    assert alerts["status"] == "fail" and alerts["detail"].startswith(f"could not ask Prometheus: {url}/api/v1/alerts")
