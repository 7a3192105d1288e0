"""A registry database as production runs it: owned and migrated by an owner role, used by
login roles that are members of selfheal_operator and selfheal_api (0005_least_privilege.sql)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import psycopg

from selfheal.registry.migrate import migrate


@dataclass(frozen=True)
class RoleDatabase:
    owner_url: str
    operator_url: str
    api_url: str


def restricted_database(admin_url: str) -> RoleDatabase:
    suffix = uuid.uuid4().hex[:8]
    name, owner, operator, api = (f"{prefix}_{suffix}" for prefix in ("roles", "owner", "op", "api"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        # CREATEROLE: the owner's first migration creates the two group roles if they are missing.
        conn.execute(f'CREATE ROLE "{owner}" LOGIN CREATEROLE')
        conn.execute(f'CREATE DATABASE "{name}" OWNER "{owner}"')
    owner_url = _url(admin_url, user=owner, database=name)
    migrate(owner_url)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{operator}" LOGIN IN ROLE selfheal_operator')
        conn.execute(f'CREATE ROLE "{api}" LOGIN IN ROLE selfheal_api')
    return RoleDatabase(
        owner_url=owner_url,
        operator_url=_url(admin_url, user=operator, database=name),
        api_url=_url(admin_url, user=api, database=name),
    )


def _url(admin_url: str, *, user: str, database: str) -> str:
    # postgresql://postgres@HOST:PORT/postgres → the same server as another user and database
    rest = admin_url.split("@", 1)[1].rsplit("/", 1)[0]
    return f"postgresql://{user}@{rest}/{database}"
