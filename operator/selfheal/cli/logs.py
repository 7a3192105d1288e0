"""`--log-format text|json`: how `selfheal operator` and `selfheal api` write their logs.

JSON is one object per line with a UTC ISO-8601 `timestamp`, `severity`, `logger` and `message`
(kopf's own JSON format for the operator; the same keys for the API), for log pipelines.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])
FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def log_format_option(function: F) -> F:
    return click.option(
        "--log-format",
        type=click.Choice(FORMATS),
        default="text",
        show_default=True,
        envvar="SELFHEAL_LOG_FORMAT",
        help="text for people; json for log pipelines (one object per line, UTC timestamps).",
    )(function)


class _JsonFormatter(logging.Formatter):
    """kopf's JSON keys (timestamp, severity, message) plus the logger's name, via python-json-logger."""

    def __init__(self) -> None:
        from pythonjsonlogger.json import JsonFormatter

        super().__init__()
        self._inner = JsonFormatter(
            "%(name)s %(message)s",
            rename_fields={"name": "logger"},
            timestamp=True,
            json_ensure_ascii=False,
        )

    def format(self, record: logging.LogRecord) -> str:
        record.severity = _SEVERITY.get(record.levelno, "error")
        return self._inner.format(record)


_SEVERITY = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warn", logging.ERROR: "error"}


def configure_logging(log_format: str, *, level: int = logging.INFO) -> None:
    """The root logger on stderr in `log_format` (the API; the operator goes through kopf)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
