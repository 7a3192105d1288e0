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
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.translate(_ESCAPES)
    return value


def boolean(value: bool) -> str:
    return "t" if value else "f"


_last_timestamp: list = [None, ""]


def timestamp(value: datetime) -> str:
    """ISO 8601; the rows of one batch share one `now`, so the last value's text is kept."""
    if value is not _last_timestamp[0]:
        _last_timestamp[:] = [value, value.isoformat()]
    return _last_timestamp[1]
