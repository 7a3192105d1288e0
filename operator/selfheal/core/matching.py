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
        # A leading number is an HTTP status, which the `status` rule handles.
        return self.code or _first_word(self.message.strip())


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


def _rank(candidate: Candidate) -> tuple[object, ...]:
    """How a candidate ranks among those of the same signature (hence the same kind and length)."""
    return (_SEVERITY_RANK.get(candidate.severity, 0), candidate.updated_at, _reverse(candidate.id))


def _first_word(message: str) -> str | None:
    match = _FIRST_WORD.match(message)
    return match.group(0) if match and not match.group(0).isdigit() else None


class PatchIndex:
    """Active patches by language and signature, the same answers as `best_match` over them all.

    Candidates sharing a signature match an error in the same way, so only the best of them (by
    severity, update time, id) is kept, and the rules are tried from most to least specific: a
    lookup is a few dict accesses (one per distinct signature length for the prefix rule, longest
    first), with no scan and no sort whatever the number of patches.
    """

    def __init__(self, candidates: Iterable[Candidate]) -> None:
        best: dict[tuple[str, str], Candidate] = {}
        count = 0
        for candidate in candidates:
            count += 1
            key = (candidate.sdk_language, candidate.error_signature)
            kept = best.get(key)
            if kept is None or _rank(candidate) > _rank(kept):
                best[key] = candidate
        self._best = best
        lengths: dict[str, set[int]] = {}
        for language, signature in best:
            lengths.setdefault(language, set()).add(len(signature))
        self._lengths = {language: sorted(found, reverse=True) for language, found in lengths.items()}
        self.size = count

    def find(self, error: ErrorReport) -> Match | None:
        return self.lookup(error.sdk_language, error.message, error.status, error.code)

    def lookup(
        self, sdk_language: str, message: str, status: int | None = None, code: str | None = None
    ) -> Match | None:
        """`find` without building an ErrorReport: the API's path, once per request."""
        best = self._best
        message = message.strip()
        found = best.get((sdk_language, message))
        if found is not None:
            return Match(found, "exact")
        name = code or _first_word(message)
        if name:
            found = best.get((sdk_language, name))
            if found is not None:
                return Match(found, "code")
        size = len(message)
        for length in self._lengths.get(sdk_language, ()):  # the longest prefix first
            if length < size:
                found = best.get((sdk_language, message[:length]))
                if found is not None:
                    return Match(found, "prefix")
        if status is not None:
            found = best.get((sdk_language, str(status)))
            if found is not None:
                return Match(found, "status")
        return None
