"""Whether an outcome report may count as evidence: recent, and about a patch served to its sender.

A report's `applied_at` must lie within −15 min … +1 min of the server's clock, and a report
naming a patch must carry a receipt the registry issued to the token's developer for that patch
(core/receipts.py). An SDK sends the same receipt with every report of a patch until its
envelope is renewed, so each receipt is checked once per request, not once per report.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from selfheal.api.schemas import Outcome
from selfheal.core import receipts

APPLIED_AT_PAST = timedelta(minutes=15)
APPLIED_AT_FUTURE = timedelta(minutes=1)
_OUTSIDE_WINDOW = "more than 15 minutes before or 1 minute after the server's clock"


class Vouching:
    """The checks of one request's reports, from one developer at one instant."""

    def __init__(self, key: bytes, *, developer: str, now: datetime) -> None:
        self.key, self.developer, self.now = key, developer, now
        self.earliest, self.latest = now - APPLIED_AT_PAST, now + APPLIED_AT_FUTURE
        self._receipts: dict[tuple[str, str | None], str | None] = {}  # (patch, receipt) -> why refused

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
        if report.patch_id is None:
            return None
        key = (report.patch_id, report.receipt)
        try:
            why = self._receipts[key]
        except KeyError:
            why = self._receipts[key] = self._check(report.patch_id, report.receipt)
        return None if why is None else {"index": index, "field": f"reports.{index}.receipt", "reason": why}

    def _check(self, patch_id: str, receipt: str | None) -> str | None:
        try:
            receipts.check(self.key, receipt, developer_id=self.developer, patch_id=patch_id, now=self.now.timestamp())
        except receipts.ReceiptError as error:
            return str(error)
        return None
