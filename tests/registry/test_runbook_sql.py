"""Every SQL query and psql command of the runbook runs unchanged against our schema."""

from __future__ import annotations

import csv
import io
import subprocess

import psycopg
import pytest

from tests.runbook import psql_commands, sql_statements


@pytest.fixture(scope="module")
def seeded(fresh_database):
    """A patch with applications in every window the runbook's reports look at."""
    with psycopg.connect(fresh_database, autocommit=True) as conn:
        patch_id = conn.execute(
            """INSERT INTO sdk_self_healing_registry (sdk_language, error_signature, patch_code, description,
                                                      severity, rollback_code)
               VALUES ('node', 'ECONNREFUSED', 'this.baseUrl = "https://api-backup.molam.com";',
                       'Fallback vers API de backup', 'high', 'this.baseUrl = "https://api.molam.com";')
               RETURNING id"""
        ).fetchone()[0]
        for index in range(12):
            conn.execute(
                """INSERT INTO sdk_patch_applications (patch_id, developer_id, sdk_language, error_encountered,
                                                       success, rollback_triggered, patch_applied, context, applied_at)
                   VALUES (%s, %s, 'node', 'ECONNREFUSED 10.0.0.1:443', %s, %s, true, '{"test": true}',
                           now() - %s * interval '1 minute')""",
                (patch_id, f"dev-{index % 3}", index % 4 != 0, index % 5 == 0, index),
            )
        conn.execute(
            """INSERT INTO sdk_patch_applications (developer_id, sdk_language, error_encountered, patch_applied)
               VALUES ('dev-9', 'python', 'KeyError: amount', false)"""
        )
    return fresh_database, patch_id


def _psql(url: str, *sql_or_args: str) -> str:
    result = subprocess.run(
        ["psql", url, "-X", "-v", "ON_ERROR_STOP=1", *sql_or_args], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_runbook_has_the_queries_we_expect():
    assert len(sql_statements()) == 5
    assert len(psql_commands()) == 10


@pytest.mark.parametrize("statement", sql_statements(), ids=lambda s: s.splitlines()[0][:40])
def test_sql_block_runs_unchanged(seeded, statement):
    url, _ = seeded
    output = _psql(url, "-c", statement)
    if statement.lstrip().startswith(("-- Patches les plus", "-- Taux de rollback", "-- Erreurs par")):
        assert "(0 rows)" not in output, output


@pytest.mark.parametrize("argv", psql_commands(), ids=lambda argv: argv[-1].split()[0])
def test_psql_command_runs_unchanged(seeded, argv):
    url, _ = seeded
    assert argv[:3] == ["psql", "-d", "molam_connect"], argv
    output = _psql(url, *argv[3:])
    if "COPY" in argv[-1]:
        rows = list(csv.reader(io.StringIO(output)))
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
        assert len(rows) == 13


def test_sql_written_patches_get_history_and_version(seeded):
    url, patch_id = seeded
    _psql(
        url,
        "-c",
        f"UPDATE sdk_self_healing_registry SET patch_code = 'this.timeout = 30000;', updated_at = now() "
        f"WHERE id = '{patch_id}'",
    )
    _psql(
        url,
        "-c",
        f"UPDATE sdk_self_healing_registry SET patch_code = 'this.timeout = 60000;', version = '2.0.0' "
        f"WHERE id = '{patch_id}'",
    )
    with psycopg.connect(url) as conn:
        versions = conn.execute(
            "SELECT revision, version FROM sdk_patch_versions WHERE patch_id = %s ORDER BY revision", (patch_id,)
        ).fetchall()
        actions = [
            row[0]
            for row in conn.execute("SELECT action FROM sdk_patch_audit WHERE patch_id = %s ORDER BY id", (patch_id,))
        ]
    assert versions == [(1, "1.0.0"), (2, "1.0.1"), (3, "2.0.0")]
    assert actions[:3] == ["create", "update", "update"]
