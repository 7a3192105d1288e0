"""What "the registry is unreachable" means, once for every caller.

Callers retry or buffer on these (the database or the pool is away); any other psycopg error
is a bug or a refusal, reported as such.
"""

from __future__ import annotations

import psycopg
import psycopg_pool

REGISTRY_UNREACHABLE: tuple[type[Exception], ...] = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    psycopg_pool.PoolTimeout,
)


def first_line(error: BaseException) -> str:
    """The error's first line, or its type when it has no text: one readable log or status line."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
