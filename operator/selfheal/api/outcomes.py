"""Outcomes SDKs report (applied, succeeded, rolled back), buffered in memory and written with COPY.

Outcomes are accepted into a buffer bounded in rows and in bytes (a report may carry a large
context) and flushed in batches. While PostgreSQL is away the buffer holds them and the writer
retries with backoff; when the buffer is full, `offer` refuses and the API answers 503 so the
SDK keeps its outcomes. Nothing is dropped silently.

The API refuses what PostgreSQL would (see selfheal.api.schemas), so a batch is written whole.
Should the database still refuse a row (a patch deleted meanwhile), the batch is split in halves
until the refused rows are alone: a bad row costs a few COPYs, not one per row of its batch.
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
        capacity_bytes: int = 64 * 1024 * 1024,
        batch_size: int = 5_000,
        flush_interval: float = 0.2,
        writers: int = 2,
    ) -> None:
        self.database_url = database_url
        self.capacity, self.batch_size, self.flush_interval = capacity, batch_size, flush_interval
        self.capacity_bytes = capacity_bytes
        self.writers = writers
        self._buffer: list[bytes] = []  # rows as COPY text lines
        self._in_flight = 0
        self._bytes = 0  # what the lines of `_buffer` and of the batches being written take
        self._wake = asyncio.Event()
        self._room = asyncio.Event()  # set whenever written rows leave the buffer
        self._stopping = False
        self.written = 0
        self.refused = 0  # rows the database rejected (logged one by one)

    @property
    def pending(self) -> int:
        return len(self._buffer) + self._in_flight

    @property
    def pending_bytes(self) -> int:
        return self._bytes

    def _fits(self, rows: int, size: int) -> bool:
        return self.pending + rows <= self.capacity and self._bytes + size <= self.capacity_bytes

    def offer(self, applications: list[outcome_rows.Application]) -> bool:
        """Queue `applications` whole, or refuse them whole when the buffer cannot hold them."""
        lines = [application.copy_line() for application in applications]
        size = _size(lines)
        if not self._fits(len(lines), size):
            return False
        self._buffer.extend(lines)
        self._bytes += size
        if len(self._buffer) >= self.batch_size:
            self._wake.set()
        return True

    async def wait_for_room(self, rows: int, *, size: int = 0, timeout: float) -> bool:
        """True once `rows` more rows of `size` bytes in all fit in the buffer; False after
        `timeout` seconds without room.

        Requests wait here before their body is even parsed: work spent on a batch that is then
        refused is work the writers do not get, and a short wait paces SDKs to the database.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self._fits(rows, size):
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
                        self._bytes -= _size(batch)
                    except (psycopg.DataError, psycopg.IntegrityError) as error:
                        # A row the database refuses must not hold back the others: split the batch
                        # until it is alone and report it, loudly, instead of retrying it forever.
                        assert conn is not None  # connected, since COPY ran and the database refused a row
                        await self._write_split(conn, batch, error)
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

    async def _write_split(self, conn: psycopg.AsyncConnection, batch: list[bytes], error: psycopg.Error) -> None:
        """Write `batch`, which the database refused, in halves, then halves of the refused halves:
        about 2 × log2(len) COPYs per refused row. Rows left when the connection goes are buffered again."""
        refused, pending = 0, [batch[: len(batch) // 2], batch[len(batch) // 2 :]]
        while pending:
            part = pending.pop(0)
            if not part:
                continue
            try:
                await outcome_rows.copy_lines(conn, part)
                self.written += len(part)
                self._bytes -= _size(part)
            except (psycopg.DataError, psycopg.IntegrityError) as part_error:
                if len(part) > 1:
                    pending[:0] = [part[: len(part) // 2], part[len(part) // 2 :]]
                    continue
                refused += 1
                self._bytes -= _size(part)
                patch_id, developer_id, _, error_text = part[0].decode().split("\t", 4)[:4]
                log.error(
                    "outcomes: refused by the database, not written (%s): developer %s, patch %s, error %r",
                    first_line(part_error),
                    developer_id,
                    patch_id,
                    error_text[:100],
                )
            except psycopg.Error:
                for rest in reversed([part, *pending]):  # the connection went: the rest waits for the next pass
                    self._buffer[:0] = rest
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


# A bytes object's header and its list slot, beside its content.
_LINE_OVERHEAD = 41


def _size(lines: list[bytes]) -> int:
    return sum(map(len, lines)) + _LINE_OVERHEAD * len(lines)
