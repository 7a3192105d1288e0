"""Which patch answers an error, by the registry's own rules (`selfheal.core.matching`).

The registry chooses the patch for a served lookup. The SDK chooses among the patches it
already holds only when it cannot ask: the bootstrap file's patches while the registry is
unreachable (or not configured), and `molam.testing`'s fake registry. The same rules give
the same answer, from most to least specific:

1. `exact`  — the signature is the whole error text (`401 Unauthorized: api_key_revoked`);
2. `code`   — the signature is the error's code (`invalid_currency`), else the text's first
              word unless it is a number;
3. `prefix` — the text starts with the signature; a longer one wins;
4. `status` — the signature is the HTTP status (`401`).

Then the longer signature, the higher severity, the higher sequence (the registry's "most
recently updated"), the smaller id.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Protocol, TypeVar

MATCH_KINDS = ("exact", "code", "prefix", "status")
_SEVERITY_RANK = {"critical": 3, "high": 2, "medium": 1, "low": 0}
_FIRST_WORD = re.compile(r"^[^\s:,;()]+")


class Matchable(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def error_signature(self) -> str: ...
    @property
    def severity(self) -> str: ...
    @property
    def sequence(self) -> int: ...


P = TypeVar("P", bound=Matchable)


def match_kind(signature: str, *, message: str, status: int | None, code: str | None) -> str | None:
    message = message.strip()
    if signature == message:
        return "exact"
    if code:
        code_or_name: str | None = code
    else:
        word = _FIRST_WORD.match(message)
        code_or_name = word.group(0) if word and not word.group(0).isdigit() else None
    if signature == code_or_name:
        return "code"
    if message.startswith(signature):
        return "prefix"
    if status is not None and signature == str(status):
        return "status"
    return None


def best_match(
    patches: Iterable[P], *, message: str, status: int | None = None, code: str | None = None
) -> tuple[P, str] | None:
    """The most specific patch for the error and how it matched, or None."""
    best: tuple | None = None
    chosen: tuple[P, str] | None = None
    for patch in patches:
        kind = match_kind(patch.error_signature, message=message, status=status, code=code)
        if kind is None:
            continue
        key = (
            -MATCH_KINDS.index(kind),
            len(patch.error_signature),
            _SEVERITY_RANK.get(patch.severity, 0),
            patch.sequence,
        )
        if best is None or key > best or (key == best and chosen is not None and patch.id < chosen[0].id):
            best, chosen = key, (patch, kind)
    return chosen
