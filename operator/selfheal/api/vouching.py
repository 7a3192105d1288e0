"""Whether an outcome report may count as evidence: recent, and about a patch served to its sender.

A report's `applied_at` must lie within −15 min … +1 min of the server's clock, and a report
naming a patch must carry a receipt the registry issued to the token's developer for that patch
(core/receipts.py). An SDK sends the same receipt with every report of a patch until its
envelope is renewed, so receipts found valid are remembered (bounded, and only valid ones: a
flood of forged receipts costs an HMAC each and evicts nothing), and each is checked once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from selfheal.api.schemas import Outcome
from selfheal.core import receipts

APPLIED_AT_PAST = timedelta(minutes=15)
APPLIED_AT_FUTURE = timedelta(minutes=1)
_OUTSIDE_WINDOW = "more than 15 minutes before or 1 minute after the server's clock"


class ValidReceipts:
    """Receipts already found valid, by (developer, patch, receipt): until when they vouch."""

    MAX_ENTRIES = 100_000  # a few hundred bytes each: tens of MiB at most

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._until: dict[tuple[str, str, str], float] = {}

    def vouches(self, key: tuple[str, str, str], now: float) -> bool:
        until = self._until.get(key)
        return until is not None and now <= until

    def remember(self, key: tuple[str, str, str], until: float) -> None:
        if len(self._until) >= self.max_entries:
            self._until.pop(next(iter(self._until)))  # the oldest first
        self._until[key] = until


class Vouching:
    """The checks of one request's reports, from one developer at one instant."""

    def __init__(self, key: bytes, *, developer: str, now: datetime, valid: ValidReceipts) -> None:
        self.key, self.developer, self.now, self.valid = key, developer, now, valid
        self.timestamp = now.timestamp()
        self.earliest, self.latest = now - APPLIED_AT_PAST, now + APPLIED_AT_FUTURE
        self._refused: dict[tuple[str, str | None], str] = {}  # this request's invalid receipts, and why

    def refusal(self, report: Outcome, index: int) -> dict | None:
        """Why this report may not count (a `rejected` entry), or None when it may."""
        applied_at = report.applied_at
        if applied_at is not None:
            if applied_at.tzinfo is None:
                return {
                    "index": index,
                    "field": f"reports.{index}.applied_at",
                    "reason": "timestamp without a time zone",
                }
            if not self.earliest <= applied_at <= self.latest:
                return {"index": index, "field": f"reports.{index}.applied_at", "reason": _OUTSIDE_WINDOW}
        patch_id, receipt = report.patch_id, report.receipt
        if patch_id is None:
            return None
        if receipt is not None and self.valid.vouches((self.developer, patch_id, receipt), self.timestamp):
            return None
        why = self._refused.get((patch_id, receipt)) or self._check(patch_id, receipt)
        return None if why is None else {"index": index, "field": f"reports.{index}.receipt", "reason": why}

    def _check(self, patch_id: str, receipt: str | None) -> str | None:
        try:
            checked = receipts.check(
                self.key, receipt, developer_id=self.developer, patch_id=patch_id, now=self.timestamp
            )
        except receipts.ReceiptError as error:
            self._refused[(patch_id, receipt)] = str(error)
            return str(error)
        assert receipt is not None  # checked: a receipt
        self.valid.remember((self.developer, patch_id, receipt), checked.expires_at + receipts.REPORT_GRACE_SECONDS)
        return None
