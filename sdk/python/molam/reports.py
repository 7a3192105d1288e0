"""Outcome reports, buffered and sent in batches by a background thread, off the caller's path.

Reports the API cannot take now (down, 5xx, 503 "buffer full") stay in the buffer and go with
a later batch. The buffer is bounded: when full, the oldest report is dropped and counted,
so a long registry outage costs memory once, not for ever.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

log = logging.getLogger("molam")

Sender = Callable[[list[dict[str, Any]]], bool]  # True: done with the batch; False: keep it


class ReportQueue:
    def __init__(
        self,
        send: Sender,
        *,
        capacity: int = 10_000,
        batch_size: int = 100,
        interval: float = 1.0,
        max_interval: float = 30.0,
    ) -> None:
        self._send, self._batch_size = send, batch_size
        self._interval, self._max_interval = interval, max_interval
        self._buffer: deque[dict[str, Any]] = deque(maxlen=capacity)
        self._lock = threading.Lock()
        self._flushing = threading.Lock()  # one flush at a time: two would send the same batch twice
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.dropped = 0

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._buffer)

    def offer(self, report: dict[str, Any]) -> None:
        with self._lock:
            if len(self._buffer) == self._buffer.maxlen:
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 1000 == 0:
                    log.warning("self-heal report buffer full: %d oldest reports dropped", self.dropped)
            self._buffer.append(report)
            full_batch = len(self._buffer) >= self._batch_size
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="molam-reports", daemon=True)
                self._thread.start()
        if full_batch:
            self._wake.set()

    def flush(self) -> bool:
        """Send everything buffered now, on this thread; True when the buffer is empty."""
        with self._flushing:
            return self._drain()

    def _drain(self) -> bool:
        while True:
            with self._lock:
                batch = [self._buffer[i] for i in range(min(self._batch_size, len(self._buffer)))]
            if not batch:
                return True
            if not self._send(batch):
                return False
            sent = {id(report) for report in batch}
            with self._lock:
                # Only the batch's own reports: a full buffer may have dropped some meanwhile.
                while self._buffer and id(self._buffer[0]) in sent:
                    self._buffer.popleft()

    def close(self, *, timeout: float = 2.0) -> None:
        """Stop the thread after one last flush, waiting at most `timeout` seconds."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        delay = self._interval
        while True:
            self._wake.wait(delay)
            self._wake.clear()
            try:
                sent = self.flush()
            except Exception:  # a report thread that dies silently would drop everything after it
                log.exception("self-heal reports: unexpected error while sending")
                sent = False
            if self._stopping.is_set():
                return
            # Back off while the registry is away, so a dead registry is not hammered.
            delay = self._interval if sent else min(delay * 2, self._max_interval)
