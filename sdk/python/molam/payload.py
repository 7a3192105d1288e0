"""The signed payload's grammar, read exactly as the Node SDK reads it (sdk/node/src/payload.js).

A payload is JSON (RFC 8259), and more strictly:

- UTF-8 without a byte order mark, every sequence well formed (no UTF-16 or UTF-32, no encoded
  surrogates, no overlong forms);
- every number is an integer within ±(2**53 - 1), the range both languages read exactly: no
  fraction, no exponent, no NaN or Infinity, no -0 (JavaScript reads `30000.0` and `3e4` as
  integers and `2**53 + 1` as `2**53`; Python reads them as floats, or exactly);
- no object names a member twice (each language would keep a different one, or the last);
- no `\\u` escape leaves a lone surrogate; containers nest at most MAX_DEPTH deep;
- times are RFC 3339 in UTC, one form only: `YYYY-MM-DDTHH:MM:SS`, up to 6 fraction digits, then
  `Z` or `+00:00` (the registry writes `2026-03-01T12:00:00+00:00`).

Anything else raises PayloadError naming the field and the reason. The registry's output is
inside this grammar (canonical JSON of strings, integers, booleans, null, lists and objects);
tests/vectors/payloads.json holds the cases both SDKs run.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

MAX_SAFE_INTEGER = 2**53 - 1
MAX_DEPTH = 32
TIME_FORM = "YYYY-MM-DDTHH:MM:SS[.ffffff] then Z or +00:00"

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_STRING_RUN = re.compile(r'[^"\\\x00-\x1f]*')  # a character class only: linear on any length
_ESCAPE = re.compile(r'\\(?:["\\/bfnrt]|u([0-9A-Fa-f]{4}))')
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_TIME = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,6}))?(?:Z|\+00:00)")
_BOM = b"\xef\xbb\xbf"


class PayloadError(ValueError):
    """The payload is outside the grammar; the message names the field (or `payload`) and why."""


def parse_payload(data: bytes) -> Any:
    """The payload's value, if its bytes are inside the grammar."""
    if data.startswith(_BOM):
        raise PayloadError("payload: starts with a byte order mark (UTF-8 without one only)")
    try:
        text = data.decode("utf-8")  # strict: refuses UTF-16, encoded surrogates and overlong forms
    except UnicodeDecodeError:
        raise PayloadError("payload: is not UTF-8 text") from None
    _Scanner(text).check()
    return json.loads(text)  # inside the grammar, Python and JavaScript read the same value


def parse_time(value: Any, *, field: str) -> datetime:
    """An RFC 3339 UTC time, in the one form the grammar allows."""
    if not isinstance(value, str):
        raise PayloadError(f"{field}: must be a time string ({TIME_FORM})")
    match = _TIME.fullmatch(value)
    shown = json.dumps(value[:40], ensure_ascii=False)
    if match is None:
        raise PayloadError(f"{field}: {shown} is not an RFC 3339 UTC time ({TIME_FORM})")
    year, month, day, hour, minute, second, fraction = match.groups()
    try:
        return datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            int((fraction or "0").ljust(6, "0")),
            tzinfo=UTC,
        )
    except ValueError:
        raise PayloadError(f"{field}: {shown} is not a valid date and time") from None


def _child(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class _Scanner:
    """Checks the text against the grammar; `json.loads` then reads the value."""

    def __init__(self, text: str) -> None:
        self.text, self.pos = text, 0

    def check(self) -> None:
        self._skip_whitespace()
        self._value("", 0)
        self._skip_whitespace()
        if self.pos != len(self.text):
            raise self._error("", "has data after the JSON value")

    def _error(self, path: str, reason: str) -> PayloadError:
        return PayloadError(f"{path or 'payload'}: {reason}")

    def _skip_whitespace(self) -> None:
        self.pos = _WHITESPACE.match(self.text, self.pos).end()  # type: ignore[union-attr]  # matches empty

    def _value(self, path: str, depth: int) -> None:
        text, pos = self.text, self.pos
        char = text[pos] if pos < len(text) else ""
        if char in ("{", "["):
            if depth >= MAX_DEPTH:
                raise self._error(path, f"nests deeper than {MAX_DEPTH} levels")
            (self._object if char == "{" else self._array)(path, depth + 1)
        elif char == '"':
            self._string(path)
        elif char == "-" or char.isascii() and char.isdigit():
            self._number(path)
        else:
            for word in ("true", "false", "null"):
                if text.startswith(word, pos):
                    self.pos += len(word)
                    return
            if text.startswith("NaN", pos) or text.startswith("Infinity", pos):
                raise self._error(path, "NaN and Infinity are not JSON")
            raise self._error(path, "ends before a value" if not char else "is not a JSON value")

    def _object(self, path: str, depth: int) -> None:
        self.pos += 1
        self._skip_whitespace()
        if self.text.startswith("}", self.pos):
            self.pos += 1
            return
        seen: set[str] = set()
        while True:
            if not self.text.startswith('"', self.pos):
                raise self._error(path, "expects a member name in double quotes")
            start = self.pos
            self._string(path)
            name = json.loads(self.text[start : self.pos])
            if name in seen:
                raise self._error(path, f"names the member {json.dumps(name, ensure_ascii=False)} twice")
            seen.add(name)
            self._skip_whitespace()
            if not self.text.startswith(":", self.pos):
                raise self._error(_child(path, name), "expects ':' after the member name")
            self.pos += 1
            self._skip_whitespace()
            self._value(_child(path, name), depth)
            self._skip_whitespace()
            if self.text.startswith(",", self.pos):
                self.pos += 1
                self._skip_whitespace()
            elif self.text.startswith("}", self.pos):
                self.pos += 1
                return
            else:
                raise self._error(path, "expects ',' or '}'")

    def _array(self, path: str, depth: int) -> None:
        self.pos += 1
        self._skip_whitespace()
        if self.text.startswith("]", self.pos):
            self.pos += 1
            return
        index = 0
        while True:
            self._value(f"{path}[{index}]", depth)
            self._skip_whitespace()
            if self.text.startswith(",", self.pos):
                self.pos += 1
                self._skip_whitespace()
                index += 1
            elif self.text.startswith("]", self.pos):
                self.pos += 1
                return
            else:
                raise self._error(path, "expects ',' or ']'")

    def _string(self, path: str) -> None:
        text = self.text
        self.pos += 1
        while True:
            self.pos = _STRING_RUN.match(text, self.pos).end()  # type: ignore[union-attr]  # matches empty
            char = text[self.pos] if self.pos < len(text) else ""
            if char == '"':
                self.pos += 1
                return
            if char == "\\":
                escape = _ESCAPE.match(text, self.pos)
                if escape is None:
                    raise self._error(path, "has an invalid escape in a string")
                self.pos = escape.end()
                if escape.group(1) is not None:
                    self._surrogates(path, int(escape.group(1), 16))
            elif char:
                raise self._error(path, "has a control character in a string (escape it)")
            else:
                raise self._error(path, "has a string that does not end")

    def _surrogates(self, path: str, code: int) -> None:
        if 0xDC00 <= code <= 0xDFFF:
            raise self._error(path, "has a lone surrogate escape in a string")
        if 0xD800 <= code <= 0xDBFF:
            low = _ESCAPE.match(self.text, self.pos)
            if low is None or low.group(1) is None or not 0xDC00 <= int(low.group(1), 16) <= 0xDFFF:
                raise self._error(path, "has a lone surrogate escape in a string")
            self.pos = low.end()

    def _number(self, path: str) -> None:
        match = _NUMBER.match(self.text, self.pos)
        if match is None:
            if self.text.startswith("-Infinity", self.pos):
                raise self._error(path, "NaN and Infinity are not JSON")
            raise self._error(path, "is not a JSON number")
        token = match.group(0)
        shown = token if len(token) <= 40 else token[:40] + "…"
        if match.group(1) is not None or match.group(2) is not None:
            raise self._error(path, f"number {shown} has a fraction or an exponent: only integers are allowed")
        if token == "-0":
            raise self._error(path, "number -0 is not allowed")
        digits = token.lstrip("-")
        if len(digits) > 16 or int(digits) > MAX_SAFE_INTEGER:
            raise self._error(path, f"integer {shown} is outside ±(2^53-1)")
        self.pos = match.end()
