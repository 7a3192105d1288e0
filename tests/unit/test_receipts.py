"""Receipts (core/receipts.py): bound to developer, patch, version and expiry; nothing else vouches."""

from __future__ import annotations

import pytest

from selfheal.core import receipts

KEY = receipts.derive_key(b"k" * 32)
ISSUED = receipts.issue(KEY, developer_id="shop", patch_id="p-1", version="1.2.0", expires_at=1_000)


def test_a_receipt_vouches_for_its_developer_and_patch_until_15_minutes_after_expiry():
    assert receipts.check(KEY, ISSUED, developer_id="shop", patch_id="p-1", now=1_000 + 900) == receipts.Receipt(
        version="1.2.0", expires_at=1_000
    )


@pytest.mark.parametrize(
    "receipt, developer, patch, now, reason",
    [
        (None, "shop", "p-1", 0, "no receipt"),
        ("", "shop", "p-1", 0, "no receipt"),
        (ISSUED, "other", "p-1", 0, "receipt not issued to this token for this patch"),
        (ISSUED, "shop", "p-2", 0, "receipt not issued to this token for this patch"),
        (ISSUED.replace("1.2.0", "1.3.0"), "shop", "p-1", 0, "receipt not issued to this token for this patch"),
        (ISSUED.replace("1000.", "99999.", 1), "shop", "p-1", 0, "receipt not issued to this token for this patch"),
        (ISSUED, "shop", "p-1", 1_000 + 901, "receipt expired more than 15 minutes ago"),
        ("x" * 201, "shop", "p-1", 0, "receipt longer than 200 characters"),
        ("abc.def.1.0.0", "shop", "p-1", 0, "malformed receipt"),
        ("1000..1.0.0", "shop", "p-1", 0, "malformed receipt"),
        ("1000.mac", "shop", "p-1", 0, "malformed receipt"),
        ("9" * 13 + ".mac.1", "shop", "p-1", 0, "malformed receipt"),
    ],
)
def test_anything_else_is_refused_with_its_reason(receipt, developer, patch, now, reason):
    with pytest.raises(receipts.ReceiptError, match=reason):
        receipts.check(KEY, receipt, developer_id=developer, patch_id=patch, now=now)


def test_another_signing_key_gives_another_receipt_key():
    assert receipts.derive_key(b"a" * 32) != receipts.derive_key(b"b" * 32)
    other = receipts.issue(
        receipts.derive_key(b"a" * 32), developer_id="shop", patch_id="p-1", version="1.2.0", expires_at=1_000
    )
    with pytest.raises(receipts.ReceiptError):
        receipts.check(KEY, other, developer_id="shop", patch_id="p-1", now=0)
