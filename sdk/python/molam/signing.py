"""Request signatures for the payments API: HMAC-SHA256 with the account's secret key.

Headers sent with every request:

    Authorization:    Bearer <api key>
    Molam-Timestamp:  <unix seconds, from the client clock plus clock_skew_seconds>
    Molam-Signature:  v1=<hex HMAC-SHA256(secret key, "<timestamp>.<METHOD>.<path>." + body)>

Method and path are signed with the body so a captured signature cannot be replayed against
another endpoint; the timestamp lets the server refuse old captures (it allows a small window).
"""

from __future__ import annotations

import hashlib
import hmac

SCHEME = "v1"


def signature(*, secret_key: str, timestamp: int, method: str, path: str, body: bytes) -> str:
    message = f"{timestamp}.{method.upper()}.{path}.".encode() + body
    return f"{SCHEME}=" + hmac.new(secret_key.encode("utf-8"), message, hashlib.sha256).hexdigest()


def verify(*, secret_key: str, timestamp: int, method: str, path: str, body: bytes, header: str) -> bool:
    expected = signature(secret_key=secret_key, timestamp=timestamp, method=method, path=path, body=body)
    return hmac.compare_digest(expected, header)
