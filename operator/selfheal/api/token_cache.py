"""Bearer tokens → principals, kept for a few seconds so that requests never wait on the database.

One query per token and interval, however many requests carry it: an expired entry is still
answered while a single check refreshes it behind the answer (a revocation lands within about
one interval), and a token seen for the first time is checked once for all the requests that
wait on it. The checks share one connection, reopened after a failure.

Entries are keyed by the token itself, in this process's memory only (every request carries it
there anyway), so no digest is computed per request. The database stores digests.

Memory is bounded in bytes whatever arrives: only well-formed tokens (60 characters) reach this
cache (the API refuses the others first); known and unknown tokens have budgets of their own, so
a flood of unknown tokens never evicts a known one; past its budget the oldest entry goes; and
at most `MAX_PENDING_CHECKS` first-time checks wait at once (beyond: `Busy`, the API answers 503).
"""

from __future__ import annotations

import asyncio
import time

import psycopg

from selfheal.registry import tokens

NOT_CACHED = object()
# What one entry costs: the 60-character key (109 bytes), its dict slot, the tuple and the float
# (measured with tracemalloc: about 210 bytes), plus a Principal (about 120 with its strings).
ENTRY_BYTES = 400
KNOWN_BYTES = 8 * 1024 * 1024  # 20,000 tokens in use at once
UNKNOWN_BYTES = 1024 * 1024  # the 2,600 latest unknown tokens: a retrying client is answered from memory
MAX_PENDING_CHECKS = 1_000

Entry = tuple[tokens.Principal | None, float]


class Busy(Exception):
    """Too many first-time token checks are waiting on the database: retry shortly."""


class TokenCache:
    def __init__(
        self, database_url: str, ttl: float, *, known_bytes: int = KNOWN_BYTES, unknown_bytes: int = UNKNOWN_BYTES
    ) -> None:
        self.database_url, self.ttl = database_url, ttl
        self.max_known, self.max_unknown = known_bytes // ENTRY_BYTES, unknown_bytes // ENTRY_BYTES
        self._known: dict[str, Entry] = {}
        self._unknown: dict[str, Entry] = {}
        self._checks: dict[str, asyncio.Future] = {}
        self._conn: psycopg.AsyncConnection | None = None
        self._lock = asyncio.Lock()

    def _entry(self, token: str) -> Entry | None:
        return self._known.get(token) or self._unknown.get(token)

    def cached(self, token: str) -> tokens.Principal | None | object:
        """The answer kept for `token`, without waiting; NOT_CACHED when it must be checked first."""
        cached = self._entry(token)
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
        """Who holds `token` (None: unknown or revoked). psycopg.Error when nobody can say; Busy when
        too many checks wait already."""
        answer = self.cached(token)
        if answer is not NOT_CACHED:
            return answer  # type: ignore[return-value]  # a Principal or None, the sentinel ruled out
        check = self._checks.get(token)
        if check is None:
            if len(self._checks) >= MAX_PENDING_CHECKS:
                raise Busy()
            check = self._start_check(token)
        try:
            return await asyncio.shield(check)
        except psycopg.Error:
            kept = self._entry(token)
            if kept is not None:
                return kept[0]  # the registry is away: a token known a while ago stays known
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
        self._keep(token, principal)
        return principal

    def _keep(self, token: str, principal: tokens.Principal | None) -> None:
        """The answer as the newest entry of its kind, the oldest evicted past the kind's budget."""
        self._known.pop(token, None)
        self._unknown.pop(token, None)
        kept, limit = (self._known, self.max_known) if principal is not None else (self._unknown, self.max_unknown)
        while len(kept) >= limit:
            del kept[next(iter(kept))]  # insertion order: the oldest first
        kept[token] = (principal, time.monotonic() + self.ttl)

    @property
    def size(self) -> tuple[int, int]:
        """(known, unknown) tokens kept."""
        return len(self._known), len(self._unknown)

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()


def _retrieve(check: asyncio.Future) -> None:
    # A background refresh that failed keeps the cached answer; its error is not lost to asyncio's
    # "never retrieved" warning, the next request retries.
    if not check.cancelled():
        check.exception()
