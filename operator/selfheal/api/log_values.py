"""Log lines that say what happened and nothing more: values from requests cannot forge a line.

A kill-switch reason, a token's developer id or a database error may hold a newline, a carriage
return, an ANSI escape or a character some viewers render as a line break (U+0085, U+2028) or use
to reorder text (bidirectional controls). Each is written as a visible escape instead.
"""

from __future__ import annotations

import logging
import re

# C0 controls, DEL, C1 controls (U+0085 among them), the Unicode line and paragraph separators and
# the bidirectional embeddings, overrides and isolates.
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    character = match.group()
    code = ord(character)
    return _SHORT.get(character) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def printable(text: str) -> str:
    """`text` with every unsafe character written as `\\xNN` or `\\uNNNN`."""
    return UNSAFE.sub(_escape, text) if UNSAFE.search(text) else text


def json_escaped(encoded: str) -> str:
    """A JSON string literal with the unsafe characters its encoder leaves as they are written as `\\uNNNN`."""
    return UNSAFE.sub(lambda match: f"\\u{ord(match.group()):04x}", encoded) if UNSAFE.search(encoded) else encoded


class EscapedValues(logging.Filter):
    """Formats each record's message once, with its arguments, and escapes the result: the format
    string is ours, so escaping the whole message escapes exactly the values."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        safe = printable(message)
        if safe is not message or record.args:
            record.msg, record.args = safe, None
        return True


def escape_values_of(*names: str) -> None:
    """Install the filter on these loggers (once each)."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(item, EscapedValues) for item in logger.filters):
            logger.addFilter(EscapedValues())
