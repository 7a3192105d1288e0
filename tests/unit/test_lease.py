"""Leader election's decisions (core/lease.py): one holder at a time, judged by our own clock."""

from __future__ import annotations

from selfheal.core.lease import LeaseRecord, next_step, observe

ME, OTHER = "operator-a_1", "operator-b_2"


def test_no_lease_is_created_and_our_own_is_renewed():
    assert next_step(identity=ME, record=None, observation=None, now=0.0) == "create"
    ours = LeaseRecord(holder=ME, duration_seconds=8, renew_time="t1")
    assert next_step(identity=ME, record=ours, observation=observe(None, ours, now=0.0), now=100.0) == "renew"


def test_a_live_holder_is_waited_for_and_an_expired_one_taken_over():
    record = LeaseRecord(holder=OTHER, duration_seconds=8, renew_time="t1")
    seen = observe(None, record, now=10.0)
    assert next_step(identity=ME, record=record, observation=seen, now=18.0) == "wait"  # exactly the duration
    assert next_step(identity=ME, record=record, observation=seen, now=18.1) == "take"


def test_every_renewal_restarts_our_clock_whatever_time_the_holder_writes():
    first = LeaseRecord(holder=OTHER, duration_seconds=8, renew_time="2000-01-01T00:00:00Z")  # a skewed clock
    seen = observe(None, first, now=0.0)
    renewed = LeaseRecord(holder=OTHER, duration_seconds=8, renew_time="2000-01-01T00:00:02Z")
    seen = observe(seen, renewed, now=7.0)
    assert seen.seen_at == 7.0
    assert next_step(identity=ME, record=renewed, observation=seen, now=14.0) == "wait"
    assert observe(seen, renewed, now=20.0) is seen  # unchanged: the clock keeps running
    assert next_step(identity=ME, record=renewed, observation=seen, now=15.5) == "take"


def test_a_released_lease_is_taken_at_once():
    released = LeaseRecord(holder=None, duration_seconds=8, renew_time="t9")
    assert next_step(identity=ME, record=released, observation=observe(None, released, now=0.0), now=0.0) == "take"


def test_a_record_never_observed_before_is_not_taken():
    record = LeaseRecord(holder=OTHER, duration_seconds=8, renew_time="t1")
    assert next_step(identity=ME, record=record, observation=None, now=1000.0) == "wait"
