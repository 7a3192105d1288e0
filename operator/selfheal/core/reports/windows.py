"""Report windows written as people write them: `90m`, `24h`, `7d`, `2w`."""

from __future__ import annotations

import datetime
import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_window(text: str) -> datetime.timedelta:
    """`90m`, `24h`, `7d`, `2w` → a timedelta (positive)."""
    match = _DURATION.match(text)
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"{text!r} is not a duration like 90m, 24h, 7d or 2w")
    return datetime.timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def describe_window(window: datetime.timedelta) -> str:
    seconds = int(window.total_seconds())
    if seconds % 86400 == 0 and seconds > 86400:
        return f"{seconds // 86400}d"
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
