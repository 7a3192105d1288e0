"""The token bucket on a controlled clock: what passes, what waits and for how long."""

from __future__ import annotations

from selfheal.api.ratelimit import RateLimiter


def test_a_burst_passes_then_each_request_waits_for_its_token():
    limiter = RateLimiter(rate=2, burst=4)
    assert [limiter.acquire("t", now=100.0) for _ in range(4)] == [0.0] * 4
    assert limiter.acquire("t", now=100.0) == 0.5  # one token at 2 a second
    assert limiter.acquire("t", now=100.25) == 0.25  # half of it has come back
    assert limiter.acquire("t", now=100.5) == 0.0
    assert limiter.acquire("t", now=100.5) == 0.5


def test_the_bucket_refills_to_its_burst_and_no_further():
    limiter = RateLimiter(rate=10, burst=3)
    for _ in range(3):
        limiter.acquire("t", now=0.0)
    passed = [limiter.acquire("t", now=3600.0) for _ in range(4)]  # an hour idle: still only 3
    assert passed == [0.0, 0.0, 0.0, 0.1]


def test_each_key_has_its_own_bucket():
    limiter = RateLimiter(rate=1, burst=1)
    assert limiter.acquire("a", now=0.0) == 0.0
    assert limiter.acquire("a", now=0.0) == 1.0
    assert limiter.acquire("b", now=0.0) == 0.0


def test_past_max_keys_buckets_are_forgotten_which_only_lets_more_through():
    limiter = RateLimiter(rate=1, burst=1, max_keys=2)
    limiter.acquire("a", now=0.0)
    limiter.acquire("b", now=0.0)
    assert limiter.acquire("a", now=0.0) == 1.0
    limiter.acquire("c", now=0.0)  # a third key: the old buckets go
    assert limiter.acquire("a", now=0.0) == 0.0
