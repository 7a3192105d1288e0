"""Every `selfheal report` figure, against a real PostgreSQL seeded at fixed times (see conftest)."""

from __future__ import annotations

import csv
import io
import subprocess

import pytest

from tests.reports.conftest import AS_OF, report
from tests.runbook import psql_commands


def test_top_patches_seven_days(seeded):
    rows = report(seeded, "top-patches")
    assert [(r["error_signature"], r["applications"], round(r["success_rate"], 4)) for r in rows] == [
        ("ECONNREFUSED", 120, 0.95),
        ("Timeout", 55, 1.0),
        ("401", 20, 0.4),
    ]
    assert list(rows[0]) == ["sdk_language", "error_signature", "description", "applications", "success_rate"]


def test_top_patches_limit_and_window(seeded):
    assert [r["error_signature"] for r in report(seeded, "top-patches", "--limit", "1")] == ["ECONNREFUSED"]
    # The last 24 hours leave out the quiet day's 50 applications of the timeout patch.
    rows = report(seeded, "top-patches", "--window", "24h")
    assert [(r["error_signature"], r["applications"]) for r in rows] == [
        ("ECONNREFUSED", 120),
        ("401", 20),
        ("Timeout", 5),
    ]


def test_rollback_rates_over_ten_applications_in_24_hours(seeded):
    rows = report(seeded, "rollback-rates")
    assert [(r["description"], r["total_applications"], r["rollbacks"], r["rollback_rate"]) for r in rows] == [
        ("Fallback API key", 20, 8, 40.0),
        ("Fallback vers API de backup", 120, 3, 2.5),
    ]
    rows = report(seeded, "rollback-rates", "--min-applications", "4")
    assert [r["description"] for r in rows][-1] == "Longer timeout"


def test_developers(seeded):
    rows = report(seeded, "developers")
    assert [(r["developer_id"], r["sdk_language"], r["total_patches_applied"], r["successful"]) for r in rows] == [
        ("dev-a", "node", 125, 114),
        ("dev-c", "node", 55, 55),
        ("dev-b", "python", 21, 8),
        ("dev-d", "python", 4, 0),
    ]


def test_unpatched_errors(seeded):
    rows = report(seeded, "unpatched-errors")
    assert [(r["sdk_language"], r["error_pattern"], r["occurrences"]) for r in rows] == [
        ("python", "KeyError: amount", 4),
        ("node", "ETIMEDOUT 10.0.0.1:443", 3),
        ("node", "ECONNREFUSED 10.1.1.1:443", 2),
        ("python", "401 Unauthorized", 1),
    ]


def test_failing_patches_last_hour_and_rollbacks(seeded):
    # k = 20 and 40 minutes ago; k = 60 is exactly one hour ago, and the runbook's bound is `>`.
    assert report(seeded, "failing-patches") == [
        {"id": "p-econn", "description": "Fallback vers API de backup", "failures": 2}
    ]
    rollbacks = report(seeded, "rollbacks")
    assert len(rollbacks) == 11
    assert rollbacks[0]["applied_at"].startswith("2025-06-15T11:40:00")  # p-econn, k = 20: the latest
    assert rollbacks[0]["context"] == {"test": True}


def test_export_thirty_days_in_the_runbook_columns(seeded):
    rows = list(csv.reader(io.StringIO(report(seeded, "export", fmt="csv"))))
    assert rows[0] == [
        "sdk_language",
        "error_signature",
        "description",
        "error_encountered",
        "success",
        "rollback_triggered",
        "context",
        "applied_at",
    ]
    assert len(rows) == 1 + 195  # the 45-day-old application is out
    assert rows[1][:6] == ["node", "ECONNREFUSED", "Fallback vers API de backup", "ECONNREFUSED 10.1.1.1:443", "t", "f"]
    assert rows[1][6] == '{"test": true}'
    as_json = report(seeded, "export")
    assert len(as_json) == 195 and as_json[0]["success"] is True


def test_export_is_byte_for_byte_the_runbook_psql_command(seeded, tmp_path):
    """Without --as-of: the runbook's COPY command and `selfheal report export` write the same file."""
    [copy_command] = [argv for argv in psql_commands() if "COPY" in argv[-1]]
    expected = subprocess.run(["psql", seeded, "-X", *copy_command[3:]], capture_output=True, check=True).stdout
    out = tmp_path / "patch_applications.csv"
    report(seeded, "export", "--output", str(out), as_of=None, fmt="csv")
    assert out.read_bytes() == expected
    assert len(expected.splitlines()) == 1 + 3  # the rows relative to now()


def test_runbook_windows_unchanged_without_as_of(seeded):
    assert [(r["error_signature"], r["applications"]) for r in report(seeded, "top-patches", as_of=None)] == [
        ("Timeout", 3)
    ]
    assert report(seeded, "rollback-rates", as_of=None) == []
    assert [
        (r["developer_id"], r["total_patches_applied"], r["successful"])
        for r in report(seeded, "developers", as_of=None)
    ] == [("dev-c", 3, 2)]
    assert report(seeded, "unpatched-errors", as_of=None) == []


def test_kpis_seven_days(seeded):
    kpis = {row["kpi"]: row for row in report(seeded, "kpis")}
    assert list(kpis) == ["application_rate", "rollback_rate", "mttr", "coverage", "sdk_adoption"]
    assert (kpis["application_rate"]["numerator"], kpis["application_rate"]["denominator"]) == (177, 195)
    assert kpis["application_rate"]["value"] == pytest.approx(90.7692, abs=1e-4)
    assert (kpis["rollback_rate"]["numerator"], kpis["rollback_rate"]["denominator"]) == (11, 195)
    assert kpis["rollback_rate"]["value"] == pytest.approx(5.641, abs=1e-3)
    # p-econn: 2 h after its error was first seen; p-401: 12 h; p-timeout healed with no earlier miss.
    assert (kpis["mttr"]["value"], kpis["mttr"]["unit"]) == (25200.0, "s")
    assert (kpis["mttr"]["numerator"], kpis["mttr"]["denominator"]) == (2, 3)
    assert (kpis["coverage"]["numerator"], kpis["coverage"]["denominator"]) == (195, 205)
    # dev-a, b, c, d reported; dev-e holds a live token; dev-f's was revoked before; admins do not count.
    assert (kpis["sdk_adoption"]["numerator"], kpis["sdk_adoption"]["denominator"], kpis["sdk_adoption"]["value"]) == (
        4,
        5,
        80.0,
    )


def test_kpis_of_an_empty_window_are_null_not_zero(seeded):
    kpis = {row["kpi"]: row for row in report(seeded, "kpis", "--window", "1h", as_of=AS_OF.replace(year=2024))}
    assert kpis["application_rate"]["value"] is None and kpis["mttr"]["value"] is None
    assert kpis["sdk_adoption"]["denominator"] == 0  # the tokens were created in 2025


def test_table_is_aligned_for_people(seeded):
    text = report(seeded, "rollback-rates", fmt="table")
    lines = text.splitlines()
    assert lines[0].split() == ["description", "total_applications", "rollbacks", "rollback_rate"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert lines[2].startswith("Fallback API key ") and lines[2].endswith("40")
    assert lines[3].endswith("2.5")
    # Numbers are right-aligned under their header.
    assert lines[2].index("20") + 2 == lines[0].index("total_applications") + len("total_applications")
    assert lines[-1] == "(2 rows)"


def test_csv_for_machines(seeded):
    rows = list(csv.DictReader(io.StringIO(report(seeded, "top-patches", fmt="csv"))))
    assert [(r["error_signature"], r["applications"], r["success_rate"]) for r in rows] == [
        ("ECONNREFUSED", "120", "0.95000000000000000000"),
        ("Timeout", "55", "1.00000000000000000000"),
        ("401", "20", "0.40000000000000000000"),
    ]


def test_bad_window_and_unreachable_registry_are_usage_errors(seeded):
    from tests.api_server import selfheal

    result = selfheal("report", "kpis", "--window", "soon", database_url=seeded, check=False)
    assert result.returncode == 2 and "duration" in result.stderr
    result = selfheal("report", "checklist", database_url="postgresql://nobody@127.0.0.1:1/none", check=False)
    assert result.returncode == 2 and "cannot reach the registry database" in result.stderr
