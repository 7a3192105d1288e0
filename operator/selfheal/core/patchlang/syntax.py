"""The neutral form both front-ends reduce patch code to: three statement shapes over literals.

A front-end only recognises shapes (`client.name = literal`, `client.name(literals)`,
`logger.level(literal)`); what the names mean and which values are allowed is decided once,
for both languages, by the compiler against the table in `operations`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

Kind = Literal["string", "number", "boolean", "null", "mapping"]


@dataclass(frozen=True)
class Entry:
    """One `key: value` of a mapping literal (a Python dict or keyword arguments, a JS object)."""

    key: str
    value: Value
    line: int
    column: int


@dataclass(frozen=True)
class Value:
    """A literal. Numbers are exact Decimals, so `0.1` means 0.1 whatever the language."""

    kind: Kind
    data: str | Decimal | bool | None | tuple[Entry, ...]
    line: int
    column: int


@dataclass(frozen=True)
class Assignment:
    """`self.<name> = <literal>` / `this.<name> = <literal>`."""

    name: str
    value: Value
    line: int
    column: int


@dataclass(frozen=True)
class ActionCall:
    """`self.<name>(<literals>, <keyword>=<literal>)` / `this.<name>(<literals>)`."""

    name: str
    arguments: tuple[Value, ...]
    keywords: tuple[Entry, ...]
    line: int
    column: int


@dataclass(frozen=True)
class LogCall:
    """`logger.<level>("…")` / `console.<level>("…")`."""

    level: str
    arguments: tuple[Value, ...]
    line: int
    column: int


Statement = Assignment | ActionCall | LogCall
