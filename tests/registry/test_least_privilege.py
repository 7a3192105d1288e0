"""The operator's and the API's PostgreSQL roles: what each may write, and history stays append-only.

The full cycle with the real operator and API under these roles is in
tests/manifests/test_operator_rbac.py; here each grant is checked in SQL.
"""

from __future__ import annotations

import json

import psycopg
import pytest

from tests.db_roles import RoleDatabase, restricted_database

APPEND_ONLY = ("sdk_patch_audit", "sdk_patch_versions", "sdk_patch_applications")
OPS = json.dumps({"format": "selfheal.operations", "version": 1, "operations": []})


@pytest.fixture(scope="module")
def roles(admin_database_url) -> RoleDatabase:
    db = restricted_database(admin_database_url)
    with psycopg.connect(db.owner_url, autocommit=True) as conn:
        conn.execute("""INSERT INTO sdk_self_healing_registry (id, sdk_language, error_signature, patch_code)
                        VALUES ('seed', 'python', 'ConnectionError', 'self.max_retries = 1')""")
        conn.execute("""INSERT INTO sdk_patch_applications (patch_id, developer_id, sdk_language, success)
                        VALUES ('seed', 'dev-1', 'python', true)""")
    return db


def sql(url: str, statement: str, params: tuple = ()) -> list:
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


@pytest.mark.parametrize("who", ["operator_url", "api_url"])
@pytest.mark.parametrize("table", APPEND_ONLY)
@pytest.mark.parametrize(
    "statement", ["UPDATE {table} SET patch_id = patch_id", "DELETE FROM {table}", "TRUNCATE {table}"]
)
def test_history_audit_and_applications_are_append_only(roles, who, table, statement):
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        sql(getattr(roles, who), statement.format(table=table))
    assert sql(roles.owner_url, f"SELECT count(*) FROM {table} WHERE patch_id = 'seed'")[0][0] >= 1


def test_operator_writes_patches_and_the_triggers_write_history_for_it(roles):
    with psycopg.connect(roles.operator_url) as conn:
        conn.execute("SET LOCAL selfheal.actor = 'operator'")
        conn.execute(
            """INSERT INTO sdk_self_healing_registry (id, sdk_language, error_signature, patch_code,
                            validation_state, operations, source_namespace, source_name)
                        VALUES ('op-1', 'node', 'ECONNREFUSED', 'this.maxRetries = 1;', 'valid', %s, 'ns', 'op-1')""",
            (OPS,),
        )
        conn.commit()
        conn.execute("SET LOCAL selfheal.actor = 'operator'")
        conn.execute(
            "UPDATE sdk_self_healing_registry SET patch_code = 'this.maxRetries = 2;', operations = %s"
            " WHERE id = 'op-1'",
            (OPS,),
        )
        conn.commit()
    versions = sql(
        roles.owner_url,
        "SELECT revision, version, operations IS NOT NULL FROM sdk_patch_versions"
        " WHERE patch_id = 'op-1' ORDER BY revision",
    )
    assert versions == [(1, "1.0.0", True), (2, "1.0.1", True)]  # operations copied in the owner's name
    assert [
        row[0] for row in sql(roles.owner_url, "SELECT action FROM sdk_patch_audit WHERE patch_id = 'op-1' ORDER BY id")
    ] == ["create", "update"]
    # The guard's maintenance: partitions (DDL in the owner's name) and old rollups.
    assert sql(
        roles.operator_url, "SELECT selfheal_ensure_application_partitions(current_date + 30, current_date + 31)"
    ) == [(2,)]
    sql(roles.operator_url, "SELECT selfheal_drop_application_partitions(current_date - 1000)")
    sql(roles.operator_url, "DELETE FROM sdk_patch_rollups WHERE bucket < now() - interval '400 days'")


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM sdk_self_healing_registry WHERE id = 'seed'",
        "CREATE TABLE mine (id int)",
        "SELECT * FROM selfheal_api_tokens",
        "INSERT INTO sdk_patch_applications (patch_id, developer_id, sdk_language) VALUES ('seed', 'x', 'node')",
        "INSERT INTO sdk_patch_rollups VALUES (60, now(), 'seed', 1, 0, 0)",
    ],
)
def test_operator_cannot(roles, statement):
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        sql(roles.operator_url, statement)


def test_api_records_outcomes_and_switches_patches_off_only(roles):
    with psycopg.connect(roles.api_url, autocommit=True) as conn:
        with conn.cursor().copy(
            "COPY sdk_patch_applications (patch_id, developer_id, sdk_language, success, rollback_triggered) FROM STDIN"
        ) as copy:
            for _ in range(3):
                copy.write_row(("seed", "dev-2", "python", False, True))
    # Rollups are kept by the database for the API, which cannot write them itself.
    assert sql(
        roles.owner_url, "SELECT total, rollbacks FROM sdk_patch_rollups WHERE width = 3600 AND patch_id = 'seed'"
    ) == [(4, 3)]
    sql(
        roles.api_url,
        "UPDATE sdk_self_healing_registry SET active = false, deactivation_reason = 'ManualKillSwitch'"
        " WHERE id = 'seed'",
    )
    [(active, reason)] = sql(
        roles.owner_url, "SELECT active, deactivation_reason FROM sdk_self_healing_registry WHERE id = 'seed'"
    )
    assert (active, reason) == (False, "ManualKillSwitch")
    [(action, actor)] = sql(
        roles.owner_url, "SELECT action, actor FROM sdk_patch_audit WHERE patch_id = 'seed' ORDER BY id DESC LIMIT 1"
    )
    assert action == "deactivate" and actor.startswith("sql:api_")


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE sdk_self_healing_registry SET patch_code = 'self.max_retries = 9' WHERE id = 'seed'",
        "UPDATE sdk_self_healing_registry SET validation_state = 'valid' WHERE id = 'seed'",
        "INSERT INTO sdk_self_healing_registry (sdk_language, error_signature, patch_code)"
        " VALUES ('node', 'x', 'this.maxRetries = 1;')",
        "INSERT INTO sdk_patch_rollups VALUES (60, now(), 'seed', 1, 0, 0)",
        "INSERT INTO selfheal_api_tokens (id, token_sha256, developer_id, role) VALUES ('t', 'h', 'd', 'dev_admin')",
        "SELECT selfheal_drop_application_partitions(current_date)",
        "CREATE TABLE mine (id int)",
    ],
)
def test_api_cannot(roles, statement):
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        sql(roles.api_url, statement)
