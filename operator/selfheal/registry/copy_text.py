"""Values in PostgreSQL's COPY text format (pure logic).

Columns are separated by tabs, `\\N` is NULL, and backslash, tab, newline and carriage return
are escaped with a backslash; booleans are `t`/`f`.
"""

from __future__ import annotations

from datetime import datetime

NULL = "\\N"
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def text(value: str | None) -> str:
    if value is None:
        return NULL
    if needs_escape(value):
        return value.translate(_ESCAPES)
    return value


def needs_escape(value: str) -> bool:
    """Whether `value` holds a character COPY's text format escapes (one test for several values joined)."""
    return "\\" in value or "\t" in value or "\n" in value or "\r" in value


_last_timestamp: list = [None, ""]


def timestamp(value: datetime) -> str:
    """ISO 8601. Rows come in runs of one time (a batch's `now`, or an SDK's reports parsed each
    into an equal but distinct datetime): the last time's text is kept and reused while the times
    are equal. Equal instants written in another zone are the same timestamptz value."""
    if value != _last_timestamp[0]:
        _last_timestamp[:] = [value, value.isoformat()]
    return _last_timestamp[1]
