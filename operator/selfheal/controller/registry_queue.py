"""The handlers' registry writes, queued and committed in batches on a few pooled connections.

Started over a backlog, kopf runs every object's handler at once: thousands of handlers asking a
pool of a few connections for one each, for one short transaction and its commit each. Here they
queue instead (a wait, never a failure) and a few writers take them in batches: one transaction
per batch, a savepoint per write, so that one write's error is that handler's alone, and every
handler hears of its write only once the batch has committed. A commit or connection failure (the
registry is away) fails the whole batch, and each handler retries as it does for an outage.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
import psycopg_pool

T = TypeVar("T")
Action = Callable[[psycopg.AsyncConnection], Awaitable[Any]]

log = logging.getLogger("selfheal.operator")


@dataclass(frozen=True)
class _Job:
    action: Action
    done: asyncio.Future


class RegistryQueue:
    def __init__(self, pool: psycopg_pool.AsyncConnectionPool, *, writers: int, batch_size: int = 50) -> None:
        self.pool, self.writers, self.batch_size = pool, writers, batch_size
        self._jobs: asyncio.Queue[_Job] = asyncio.Queue()

    def start(self) -> list[asyncio.Task]:
        return [
            asyncio.create_task(self._write_batches(), name=f"selfheal-registry-writer-{number}")
            for number in range(self.writers)
        ]

    async def run(self, action: Callable[[psycopg.AsyncConnection], Awaitable[T]]) -> T:
        """Run `action` in its own savepoint of the next batch; its result once the batch committed."""
        done = asyncio.get_running_loop().create_future()
        await self._jobs.put(_Job(action, done))
        return await done

    async def _write_batches(self) -> None:
        # Each writer keeps its connection between batches: asking the pool again for every batch
        # timed out at 10,000 objects, while kopf's first pass over the backlog kept the event loop
        # busy for seconds at a time. A broken connection goes back (the pool replaces it).
        conn: psycopg.AsyncConnection | None = None
        try:
            while True:
                batch = await self._next_batch()
                try:
                    if conn is None:
                        conn = await self.pool.getconn()
                    results = await self._commit(conn, batch)
                except Exception as error:  # the registry is away (or the commit failed): every write failed
                    for job in batch:
                        _settle(job, error=error)
                    if conn is not None and conn.broken:
                        await self.pool.putconn(conn)
                        conn = None
                    continue
                for job, (result, failure) in zip(batch, results, strict=True):
                    _settle(job, result=result, error=failure)
        finally:
            if conn is not None:
                await self.pool.putconn(conn)

    async def _next_batch(self) -> list[_Job]:
        while True:
            batch = [await self._jobs.get()]
            while len(batch) < self.batch_size and not self._jobs.empty():
                batch.append(self._jobs.get_nowait())
            batch = [job for job in batch if not job.done.done()]  # handlers cancelled meanwhile
            if batch:
                return batch

    async def _commit(self, conn: psycopg.AsyncConnection, batch: list[_Job]) -> list[tuple[Any, Exception | None]]:
        results: list[tuple[Any, Exception | None]] = []
        async with conn.transaction():
            for job in batch:
                try:
                    async with conn.transaction():  # a savepoint: a failed write rolls back alone
                        results.append((await job.action(conn), None))
                except Exception as error:
                    if conn.broken:
                        raise
                    results.append((None, error))
        return results


def _settle(job: _Job, *, result: Any = None, error: BaseException | None = None) -> None:
    if job.done.done():
        return
    if error is not None:
        job.done.set_exception(error)
    else:
        job.done.set_result(result)
