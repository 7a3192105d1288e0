"""Rate limits: a token bucket per key (a token id, a client address), time passed in (pure logic).

Memory is bounded in bytes: keys are short (a 12-character token id, an address of at most 45
characters), a bucket with its key and dict slot takes under 300 bytes, and past `max_keys`
(15 MB at most) the buckets are forgotten, which only ever lets more through.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(self, *, rate: float, burst: int, max_keys: int = 50_000) -> None:
        self.rate, self.burst, self.max_keys = rate, burst, max_keys
        self._buckets: dict[str, _Bucket] = {}

    def acquire(self, key: str, *, now: float) -> float:
        """0 when allowed; otherwise the seconds to wait before the next request may pass."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._buckets.clear()  # bounded memory: forgetting buckets only ever allows more
            bucket = self._buckets[key] = _Bucket(tokens=float(self.burst), updated=now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate
