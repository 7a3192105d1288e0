"""One structured line per self-heal request, written in batches off the request path.

A `logging` record per request (record, handlers, a write per line) would sit on the lookup's
path; this appends the fields to a list and a background task formats and writes the lines every 100 ms,
as JSON objects in the same format as the process's other log lines. SDKs repeat the same few
errors, but each with a request id of its own, and over thousands of patches: a line's fields are
encoded with the line, but the developer's, which are kept per token holder.

Fields are JSON strings, so a newline in an SDK's error message cannot start a line of its own;
the characters JSON leaves as they are but viewers may break or reorder lines on (U+0085, U+2028,
bidirectional controls, DEL) are escaped too. Memory is bounded in bytes: lines waiting for a
stalled sink and the kept fragments both have a budget.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import sys
import time
from typing import TextIO

from selfheal.api.log_values import json_escaped

_encode = json.encoder.encode_basestring  # the C string encoder json.dumps(ensure_ascii=False) uses
_FRAGMENTS_KEPT = 2_000  # at most about 1 KB each (a developer id and a language)
_ERROR_CHARS = 200
# What one waiting line takes beside its error text: its tuples, the float, the list slot (the
# other strings are shared with the token cache and the catalog). An error text is at most 4
# bytes a character (CPython's widest strings).
_LINE_BYTES = 250
_SEVERITY = {"INFO": "info", "WARNING": "warn"}  # the words kopf's JSON log lines use


def _text(value: str | None) -> str:
    return "null" if value is None else json_escaped(_encode(value))


class RequestLog:
    """`json_lines`: each line one JSON object (UTC ISO-8601 `timestamp`, `severity`, `logger`,
    `message` "self-heal", then the fields), as `--log-format json` writes every other line;
    otherwise the text format's prefix, then the fields as JSON."""

    def __init__(
        self, stream: TextIO | None = None, *, max_pending_bytes: int = 16 * 1024 * 1024, json_lines: bool = False
    ) -> None:
        self.stream = stream
        self.max_pending_bytes = max_pending_bytes
        self._pending_bytes = 0
        self.json_lines = json_lines
        self._open = "" if json_lines else "{"  # the JSON object of the fields: opened by the prefix in JSON mode
        self._lines: list[tuple] = []
        self.dropped = 0
        self._second, self._stamp = -1, ""
        self._fragments: dict[tuple, str] = {}

    def self_heal(
        self,
        developer: str,
        sdk: str,
        error: str,
        patch: str | None,
        version: str | None,
        matched_by: str,
        recorded: bool,
        latency_ms: float,
    ) -> None:
        """Queue the line of one self-heal request; the fields are formatted when the batch is written."""
        error = error[:_ERROR_CHARS]
        size = _LINE_BYTES + 4 * len(error)
        if self._pending_bytes + size > self.max_pending_bytes:
            self.dropped += 1  # bounded memory if the log sink stalls; counted and reported
            return
        self._pending_bytes += size
        self._lines.append((time.time(), (developer, sdk, error, patch, version, matched_by, recorded), latency_ms))

    def _format(self, entry: tuple) -> str:
        when, (developer, sdk, error, patch, version, matched_by, recorded), latency_ms = entry
        second = int(when)
        if second != self._second:  # the time is formatted once a second, not once a line
            self._second, self._stamp = second, self._prefix(second, "INFO", "self-heal")
        head = self._fragments.get((developer, sdk))
        if head is None:
            if len(self._fragments) >= _FRAGMENTS_KEPT:
                self._fragments.clear()  # bounded memory against a flood of distinct developers
            head = self._fragments[developer, sdk] = f'"developer": {_text(developer)}, "sdk": {_text(sdk)}, '
        return (
            f'{self._stamp}{self._open}{head}"error": {_text(error)}, "patch": {_text(patch)}, '
            f'"version": {_text(version)}, "matched_by": {_text(matched_by)}, '
            f'"recorded": {"true" if recorded else "false"}, "latency_ms": {round(latency_ms, 3)!r}}}\n'
        )

    def flush(self) -> None:
        entries, self._lines, self._pending_bytes = self._lines, [], 0
        lines = [self._format(entry) for entry in entries]
        stream = self.stream or sys.stderr
        if self.dropped:
            message = f"{self.dropped} self-heal log lines dropped (log sink too slow)"
            prefix = self._prefix(int(time.time()), "WARNING", message)
            lines.append(f'{prefix}"dropped": {self.dropped}}}\n' if self.json_lines else prefix.rstrip() + "\n")
            self.dropped = 0
        if lines:
            stream.write("".join(lines))
            stream.flush()

    def _prefix(self, second: int, level: str, message: str) -> str:
        """What comes before the fields' JSON object: in JSON mode, the object's own first keys."""
        if not self.json_lines:
            return f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(second))} {level} selfheal.api {message} "
        stamp = datetime.datetime.fromtimestamp(second, datetime.UTC).isoformat()
        return (
            f'{{"timestamp": "{stamp}", "severity": "{_SEVERITY[level]}", "logger": "selfheal.api", '
            f'"message": {_text(message)}, '
        )

    async def run(self, interval: float = 0.1) -> None:
        try:
            while True:
                await asyncio.sleep(interval)
                self.flush()
        finally:
            self.flush()
