"""Bearer tokens → principals, kept for a few seconds so that requests never wait on the database.

One query per token and interval, however many requests carry it: an expired entry is still
answered while a single check refreshes it behind the answer (a revocation lands within about
one interval), and a token seen for the first time is checked once for all the requests that
wait on it. The checks share one connection, reopened after a failure.

Entries are keyed by the token itself, in this process's memory only (every request carries it
there anyway), so no digest is computed per request. The database stores digests.
"""

from __future__ import annotations

import asyncio
import time

import psycopg

from selfheal.registry import tokens

_MAX_ENTRIES = 100_000
NOT_CACHED = object()


class TokenCache:
    def __init__(self, database_url: str, ttl: float) -> None:
        self.database_url, self.ttl = database_url, ttl
        self._cache: dict[str, tuple[tokens.Principal | None, float]] = {}
        self._checks: dict[str, asyncio.Future] = {}
        self._conn: psycopg.AsyncConnection | None = None
        self._lock = asyncio.Lock()

    def cached(self, token: str) -> tokens.Principal | None | object:
        """The answer kept for `token`, without waiting; NOT_CACHED when it must be checked first."""
        cached = self._cache.get(token)
        if cached is None:
            return NOT_CACHED
        principal, expires = cached
        now = time.monotonic()
        if now < expires:
            return principal
        if now < expires + self.ttl:  # recently expired: answer now, refresh once behind it
            if token not in self._checks:
                self._start_check(token).add_done_callback(_retrieve)
            return principal
        return NOT_CACHED

    async def principal(self, token: str) -> tokens.Principal | None:
        """Who holds `token` (None: unknown or revoked). psycopg.Error when nobody can say."""
        answer = self.cached(token)
        if answer is not NOT_CACHED:
            return answer  # type: ignore[return-value]  # a Principal or None, the sentinel ruled out
        try:
            return await asyncio.shield(self._checks.get(token) or self._start_check(token))
        except psycopg.Error:
            if token in self._cache:
                return self._cache[token][0]  # the registry is away: a token known a while ago stays known
            raise

    def _start_check(self, token: str) -> asyncio.Future:
        check = self._checks[token] = asyncio.ensure_future(self._check(token))
        return check

    async def _check(self, token: str) -> tokens.Principal | None:
        try:
            async with self._lock:
                try:
                    if self._conn is None or self._conn.closed:
                        self._conn = await psycopg.AsyncConnection.connect(
                            self.database_url, autocommit=True, connect_timeout=3
                        )
                    principal = await tokens.authenticate(self._conn, token)
                except psycopg.Error:
                    if self._conn is not None:
                        await self._conn.close()
                    self._conn = None
                    raise
        finally:
            self._checks.pop(token, None)
        if len(self._cache) >= _MAX_ENTRIES:
            self._cache.clear()
        self._cache[token] = (principal, time.monotonic() + self.ttl)
        return principal

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()


def _retrieve(check: asyncio.Future) -> None:
    # A background refresh that failed keeps the cached answer; its error is not lost to asyncio's
    # "never retrieved" warning, the next request retries.
    if not check.cancelled():
        check.exception()
