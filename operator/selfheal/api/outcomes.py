"""Outcomes SDKs report (applied, succeeded, rolled back), buffered in memory and written with COPY.

Outcomes are accepted into a bounded buffer and flushed in batches. While PostgreSQL is away
the buffer holds them and the writer retries with backoff; when the buffer is full, `offer`
refuses and the API answers 503 so the SDK keeps its outcomes. Nothing is dropped silently.
"""

from __future__ import annotations

import asyncio
import logging

import psycopg

from selfheal.registry import outcomes as outcome_rows
from selfheal.registry.errors import first_line

log = logging.getLogger("selfheal.api.outcomes")


class OutcomeWriter:
    """The buffer, and `writers` connections copying batches out of it in parallel.

    One COPY at a time kept PostgreSQL on one core while the API waited; two writers let the
    database use both. A batch is taken out of the buffer while it is written and put back at
    the front if the write fails, so `pending` counts it until it is in the database.
    """

    def __init__(
        self,
        database_url: str,
        *,
        capacity: int = 100_000,
        batch_size: int = 5_000,
        flush_interval: float = 0.2,
        writers: int = 2,
    ) -> None:
        self.database_url = database_url
        self.capacity, self.batch_size, self.flush_interval = capacity, batch_size, flush_interval
        self.writers = writers
        self._buffer: list[str] = []  # rows as COPY text lines
        self._in_flight = 0
        self._wake = asyncio.Event()
        self._room = asyncio.Event()  # set whenever written rows leave the buffer
        self._stopping = False
        self.written = 0
        self.refused = 0  # rows the database rejected (logged one by one)

    @property
    def pending(self) -> int:
        return len(self._buffer) + self._in_flight

    def offer(self, applications: list[outcome_rows.Application]) -> bool:
        """Queue `applications` whole, or refuse them whole when the buffer cannot hold them."""
        if self.pending + len(applications) > self.capacity:
            return False
        self._buffer.extend([application.copy_line() for application in applications])
        if len(self._buffer) >= self.batch_size:
            self._wake.set()
        return True

    async def wait_for_room(self, rows: int, *, timeout: float) -> bool:
        """True once `rows` more fit in the buffer; False after `timeout` seconds without room.

        Requests wait here before their body is even parsed: work spent on a batch that is then
        refused is work the writers do not get, and a short wait paces SDKs to the database.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.pending + rows > self.capacity:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            self._room.clear()
            waiter = asyncio.ensure_future(self._room.wait())
            await asyncio.wait([waiter], timeout=remaining)
            waiter.cancel()
        return True

    async def run(self) -> None:
        """Write batches until `stop()`."""
        await asyncio.gather(*(self._write_batches() for _ in range(self.writers)))

    async def _write_batches(self) -> None:
        delay = 0.5
        conn: psycopg.AsyncConnection | None = None
        try:
            while not self._stopping:
                # Not asyncio.wait_for: on 3.11 it can swallow a cancellation that races the event.
                waiter = asyncio.ensure_future(self._wake.wait())
                await asyncio.wait([waiter], timeout=self.flush_interval)
                waiter.cancel()
                self._wake.clear()
                while self._buffer:
                    batch = self._buffer[: self.batch_size]
                    del self._buffer[: len(batch)]
                    self._in_flight += len(batch)
                    try:
                        if conn is None or conn.closed:
                            conn = await psycopg.AsyncConnection.connect(self.database_url, connect_timeout=3)
                        await outcome_rows.copy_lines(conn, batch)
                        self.written += len(batch)
                    except (psycopg.DataError, psycopg.IntegrityError) as error:
                        # A row the database refuses must not hold back the others: write them one by
                        # one and report each refused row, loudly, instead of retrying it forever.
                        assert conn is not None  # connected, since COPY ran and the database refused a row
                        await self._write_one_by_one(conn, batch, error)
                    except psycopg.Error as error:
                        # Keep the batch; the buffer (and 503s when full) protect the SDKs meanwhile.
                        self._buffer[:0] = batch
                        log.warning(
                            "outcomes: %d buffered, write failed (%s); retry in %.1fs",
                            self.pending,
                            first_line(error),
                            delay,
                        )
                        if conn is not None:
                            await conn.close()
                        conn = None
                        if self._stopping:
                            log.error("outcomes: stopping with %d outcomes unwritten", self.pending)
                            return
                        await self._sleep_unless_stopped(delay)
                        delay = min(delay * 2, 10)
                        break
                    finally:
                        self._in_flight -= len(batch)
                        self._room.set()
                    delay = 0.5
        finally:
            if conn is not None:
                await conn.close()

    async def _sleep_unless_stopped(self, seconds: float) -> None:
        waiter = asyncio.ensure_future(self._wake.wait())
        await asyncio.wait([waiter], timeout=seconds)
        waiter.cancel()

    async def _write_one_by_one(self, conn: psycopg.AsyncConnection, batch: list[str], error: psycopg.Error) -> None:
        refused = 0
        for index, line in enumerate(batch):
            try:
                await outcome_rows.copy_lines(conn, [line])
                self.written += 1
            except (psycopg.DataError, psycopg.IntegrityError) as row_error:
                refused += 1
                patch_id, developer_id, _, error_text = line.split("\t", 4)[:4]
                log.error(
                    "outcomes: refused by the database, not written (%s): developer %s, patch %s, error %r",
                    first_line(row_error),
                    developer_id,
                    patch_id,
                    error_text[:100],
                )
            except psycopg.Error:
                self._buffer[:0] = batch[index:]  # the connection went: the rest waits for the next pass
                await conn.close()
                break
        self.refused += refused
        log.warning("outcomes: batch of %d split after %s; %d refused", len(batch), first_line(error), refused)

    async def flush(self, timeout: float = 10.0) -> None:
        """Wait until the buffer is empty, at most `timeout` seconds."""
        self._wake.set()
        deadline = asyncio.get_running_loop().time() + timeout
        while self.pending and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
