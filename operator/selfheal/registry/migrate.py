"""Versioned schema migrations, applied in order, once, under an advisory lock."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import psycopg

# Any constant works; it only has to be the same for every selfheal process.
_MIGRATION_LOCK = 0x5E1F_4EA1


@dataclass(frozen=True)
class Migration:
    number: int
    name: str
    sql: str


def available_migrations() -> list[Migration]:
    found = []
    for entry in resources.files("selfheal.registry").joinpath("migrations").iterdir():
        match = re.fullmatch(r"(\d{4})_(\w+)\.sql", entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda migration: migration.number)


def migrate(database_url: str) -> list[Migration]:
    """Apply the migrations the database lacks; returns those applied (empty when up to date)."""
    applied_now = []
    with psycopg.connect(database_url, autocommit=False) as conn:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS selfheal_schema_migrations ("
            " number integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row[0] for row in conn.execute("SELECT number FROM selfheal_schema_migrations")}
        for migration in available_migrations():
            if migration.number in done:
                continue
            conn.execute(migration.sql)
            conn.execute(
                "INSERT INTO selfheal_schema_migrations (number, name) VALUES (%s, %s)",
                (migration.number, migration.name),
            )
            applied_now.append(migration)
        conn.commit()
    return applied_now
