"""Receipts: proof that the registry served a patch to a developer (pure logic, no I/O).

Every answer the registry API serves carries a receipt bound to the developer the token belongs
to, the patch, its version and the envelope's expiry; the SDK sends it back with each outcome
report of that patch. A report counts only with a receipt the API itself issued to that same
developer for that patch: nobody reports on a patch they were never served, nor in another's
name. The key is derived from the envelope signing key, so every API replica checks the
receipts of the others and nothing new has to be distributed.

Format: `<expires epoch seconds>.<MAC, base64url>.<version>` (a version may hold dots, so last).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

# How long after the envelope expired its receipt still vouches for reports: SDKs buffer reports
# and send them within seconds, or after an outage of the registry; the same bound as `applied_at`.
REPORT_GRACE_SECONDS = 15 * 60
MAX_RECEIPT_LENGTH = 200
_MAC_LENGTH = 16  # bytes of HMAC-SHA256 kept: 128 bits


class ReceiptError(ValueError):
    """Why a receipt does not vouch for a report: the reason is the API's answer."""


@dataclass(frozen=True)
class Receipt:
    version: str
    expires_at: int


def derive_key(secret: bytes) -> bytes:
    """The receipts' HMAC key, from the signing key's private bytes (never the key itself)."""
    return hashlib.sha256(b"selfheal receipt key v1\x00" + secret).digest()


def _mac(key: bytes, *, developer_id: str, patch_id: str, version: str, expires_at: int) -> str:
    message = "\x00".join((developer_id, patch_id, version, str(expires_at))).encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()[:_MAC_LENGTH]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def issue(key: bytes, *, developer_id: str, patch_id: str, version: str, expires_at: int) -> str:
    mac = _mac(key, developer_id=developer_id, patch_id=patch_id, version=version, expires_at=expires_at)
    return f"{expires_at}.{mac}.{version}"


def check(key: bytes, receipt: str | None, *, developer_id: str, patch_id: str, now: float) -> Receipt:
    """The receipt's version and expiry when it vouches for a report of `developer_id` on
    `patch_id` at `now`; ReceiptError naming the reason otherwise."""
    if not receipt:
        raise ReceiptError("no receipt: send the receipt of the registry's answer that served this patch")
    if len(receipt) > MAX_RECEIPT_LENGTH:
        raise ReceiptError(f"receipt longer than {MAX_RECEIPT_LENGTH} characters")
    expires_text, _, rest = receipt.partition(".")
    mac, _, version = rest.partition(".")
    if not expires_text.isdigit() or len(expires_text) > 12 or not mac or not version:
        raise ReceiptError("malformed receipt")
    expires_at = int(expires_text)
    expected = _mac(key, developer_id=developer_id, patch_id=patch_id, version=version, expires_at=expires_at)
    if not hmac.compare_digest(expected, mac):
        raise ReceiptError("receipt not issued to this token for this patch")
    if now > expires_at + REPORT_GRACE_SECONDS:
        raise ReceiptError(f"receipt expired more than {REPORT_GRACE_SECONDS // 60} minutes ago")
    return Receipt(version=version, expires_at=expires_at)
