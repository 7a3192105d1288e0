"""Reports' evidence checks (api/vouching.py): valid receipts are remembered, nothing else is."""

from __future__ import annotations

from datetime import UTC, datetime

from selfheal.api.schemas import Outcome
from selfheal.api.vouching import ValidReceipts, Vouching
from selfheal.core import receipts

KEY = receipts.derive_key(b"k" * 32)
NOW = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)


def report(receipt: str | None, patch: str = "p-1") -> Outcome:
    return Outcome(patch_id=patch, sdk="node", error="E", success=True, receipt=receipt)


def receipt(developer: str = "shop", patch: str = "p-1", expires: float = NOW.timestamp() + 300) -> str:
    return receipts.issue(KEY, developer_id=developer, patch_id=patch, version="1.0.0", expires_at=int(expires))


def test_a_remembered_receipt_vouches_only_for_its_developer_patch_and_time():
    valid = ValidReceipts()
    good = receipt()
    assert Vouching(KEY, developer="shop", now=NOW, valid=valid).refusal(report(good), 0) is None
    assert valid.vouches(("shop", "p-1", good), NOW.timestamp())
    # The same receipt from another developer, or for another patch, is checked and refused.
    assert Vouching(KEY, developer="other", now=NOW, valid=valid).refusal(report(good), 0) is not None
    assert Vouching(KEY, developer="shop", now=NOW, valid=valid).refusal(report(good, "p-2"), 0) is not None
    # Past its expiry and grace, the remembered receipt no longer vouches.
    later = datetime.fromtimestamp(NOW.timestamp() + 300 + receipts.REPORT_GRACE_SECONDS + 1, UTC)
    refused = Vouching(KEY, developer="shop", now=later, valid=valid).refusal(report(good), 0)
    assert refused is not None and refused["reason"].startswith("receipt expired")


def test_forged_receipts_are_not_remembered_and_the_memory_is_bounded():
    valid = ValidReceipts(max_entries=3)
    vouching = Vouching(KEY, developer="shop", now=NOW, valid=valid)
    for n in range(10):
        assert vouching.refusal(report(f"{int(NOW.timestamp())}.forged{n}.1.0.0"), n) is not None
    assert len(valid._until) == 0
    for n in range(5):
        assert vouching.refusal(report(receipt(patch=f"p-{n}"), f"p-{n}"), n) is None
    assert len(valid._until) == 3
