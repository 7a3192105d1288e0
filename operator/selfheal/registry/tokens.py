"""API tokens: random secrets shown once, stored as SHA-256 digests, with a role each."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

import psycopg

ROLES = ("developer", "dev_admin")
_PREFIX = "shk_"
_ID_BYTES, _SECRET_BYTES = 6, 32
# `shk_<12 hex>_<43 URL-safe base64>`, exactly what `create_token` makes: anything else is not a token.
_SHAPE = re.compile(r"shk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")
TOKEN_LENGTH = 60


def well_formed(token: str) -> bool:
    """True when `token` has the shape of a token `create_token` makes. Checked before any lookup,
    so that a malformed token costs neither a query nor a cache entry."""
    return len(token) == TOKEN_LENGTH and _SHAPE.fullmatch(token) is not None


@dataclass(frozen=True)
class Principal:
    token_id: str
    developer_id: str
    role: str


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(database_url: str, *, developer_id: str, role: str, description: str | None = None) -> tuple[str, str]:
    """A new token for `developer_id`; returns (token id, the token itself, shown only now)."""
    if role not in ROLES:
        raise ValueError(f"role: must be one of {', '.join(ROLES)}")
    token_id = secrets.token_hex(_ID_BYTES)
    token = f"{_PREFIX}{token_id}_{secrets.token_urlsafe(_SECRET_BYTES)}"
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO selfheal_api_tokens (id, token_sha256, developer_id, role, description)"
            " VALUES (%s, %s, %s, %s, %s)",
            (token_id, digest(token), developer_id, role, description),
        )
    return token_id, token


def revoke_token(database_url: str, *, token_id: str) -> bool:
    """Revoke by id (or by the token itself); False when no live token matched."""
    if token_id.startswith(_PREFIX):
        token_id = token_id[len(_PREFIX) :].split("_", 1)[0]
    with psycopg.connect(database_url) as conn:
        cursor = conn.execute(
            "UPDATE selfheal_api_tokens SET revoked_at = now() WHERE id = %s AND revoked_at IS NULL", (token_id,)
        )
        return cursor.rowcount == 1


async def authenticate(conn: psycopg.AsyncConnection, token: str) -> Principal | None:
    cursor = await conn.execute(
        "SELECT id, developer_id, role FROM selfheal_api_tokens WHERE token_sha256 = %s AND revoked_at IS NULL",
        (digest(token),),
    )
    row = await cursor.fetchone()
    return Principal(*row) if row else None
