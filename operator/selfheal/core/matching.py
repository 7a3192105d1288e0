"""Which active patch answers an SDK's error (pure logic, no I/O).

A patch's error signature matches an error in one of four ways, from most to least specific:

1. `exact`  — the signature is the whole error message (`401 Unauthorized`);
2. `code`   — the signature is the error's code or name (`ECONNREFUSED`, `invalid_currency`):
               the request's `code` field when given, else the message's first word
               (unless it is a number: that is the status);
3. `prefix` — the message starts with the signature (`401 Unauth…`); a longer prefix wins;
4. `status` — the signature is the HTTP status (`401`).

Among patches of the same kind, the longer signature wins, then the higher severity, then
the most recently updated, then the smallest id: the same request always gets the same patch.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

MATCH_KINDS = ("exact", "code", "prefix", "status")
_SEVERITY_RANK = {"critical": 3, "high": 2, "medium": 1, "low": 0}
_FIRST_WORD = re.compile(r"^[^\s:,;()]+")


@dataclass(frozen=True)
class Candidate:
    id: str
    sdk_language: str
    error_signature: str
    severity: str
    updated_at: float  # epoch seconds


@dataclass(frozen=True)
class ErrorReport:
    sdk_language: str
    message: str
    status: int | None = None
    code: str | None = None

    @property
    def code_or_name(self) -> str | None:
        if self.code:
            return self.code
        match = _FIRST_WORD.match(self.message.strip())
        # A leading number is an HTTP status, which the `status` rule handles.
        return match.group(0) if match and not match.group(0).isdigit() else None


@dataclass(frozen=True)
class Match:
    candidate: Candidate
    kind: str

    @property
    def rule(self) -> str:
        return f"{self.kind}: error signature {self.candidate.error_signature!r}"


def _kind(candidate: Candidate, error: ErrorReport) -> str | None:
    signature, message = candidate.error_signature, error.message.strip()
    if signature == message:
        return "exact"
    if signature == error.code_or_name:
        return "code"
    if message.startswith(signature):
        return "prefix"
    if error.status is not None and signature == str(error.status):
        return "status"
    return None


def best_match(candidates: Iterable[Candidate], error: ErrorReport) -> Match | None:
    """The most specific candidate for `error` among those of its SDK language, or None."""
    best: tuple[object, ...] | None = None
    chosen: Match | None = None
    for candidate in candidates:
        if candidate.sdk_language != error.sdk_language:
            continue
        kind = _kind(candidate, error)
        if kind is None:
            continue
        key = (
            -MATCH_KINDS.index(kind),
            len(candidate.error_signature),
            _SEVERITY_RANK.get(candidate.severity, 0),
            candidate.updated_at,
            _reverse(candidate.id),
        )
        if best is None or key > best:
            best, chosen = key, Match(candidate, kind)
    return chosen


def _reverse(text: str) -> tuple[int, ...]:
    # Larger key wins, but the smallest id should: negate each code point.
    return tuple(-ord(char) for char in text)


class PatchIndex:
    """Active patches by language and signature: a lookup touches a handful of dict keys,
    not every patch (one key per distinct signature length for the prefix rule)."""

    def __init__(self, candidates: Iterable[Candidate]) -> None:
        self._by_signature: dict[tuple[str, str], list[Candidate]] = {}
        lengths: dict[str, set[int]] = {}
        for candidate in candidates:
            self._by_signature.setdefault((candidate.sdk_language, candidate.error_signature), []).append(candidate)
            lengths.setdefault(candidate.sdk_language, set()).add(len(candidate.error_signature))
        self._lengths = {language: sorted(found) for language, found in lengths.items()}
        self.size = sum(len(found) for found in self._by_signature.values())

    def find(self, error: ErrorReport) -> Match | None:
        message = error.message.strip()
        keys = {message, *(message[:length] for length in self._lengths.get(error.sdk_language, ()))}
        if error.code_or_name:
            keys.add(error.code_or_name)
        if error.status is not None:
            keys.add(str(error.status))
        found = (c for key in keys for c in self._by_signature.get((error.sdk_language, key), ()))
        return best_match(found, error)
