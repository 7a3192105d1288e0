"""Lookup bodies kept by their bytes: the same answer as validating them, refusals never kept, bounded."""

import tracemalloc

from selfheal.api.app import LookupBodies


def test_the_same_bytes_give_the_kept_body_and_other_bytes_are_validated_afresh():
    bodies = LookupBodies()
    raw = b'{"sdk": "node", "error": "401 Unauthorized", "status": 401}'
    first, refusal = bodies.validated(raw)
    assert refusal is None and (first.sdk, first.error, first.status) == ("node", "401 Unauthorized", 401)
    assert bodies.validated(bytes(raw))[0] is first  # equal bytes, a new object: the kept body
    other, _ = bodies.validated(b'{"sdk": "python", "error": "timeout"}')
    assert (other.sdk, other.error, other.status) == ("python", "timeout", None)


def test_a_refused_body_is_refused_every_time_naming_its_field():
    bodies = LookupBodies()
    for _ in range(2):
        body, refusal = bodies.validated(b'{"sdk": "cobol", "error": "x"}')
        assert body is None and refusal.status == 400 and b'"sdk' in refusal.body
    body, refusal = bodies.validated(b'{"sdk": "node", "error": "nul \\u0000 inside"}')
    assert body is None and refusal.status == 400


def test_large_bodies_are_not_kept_and_the_kept_ones_stay_within_their_budget_in_bytes():
    bodies = LookupBodies()
    large = b'{"sdk": "node", "error": "E", "context": {"pad": "' + b"x" * LookupBodies.MAX_BODY_BYTES + b'"}}'
    assert bodies.validated(large)[0] is not None and not bodies._bodies
    # 2 KB bodies whose context is 180 tiny keys weigh about 20 KB each once parsed: counted in
    # entries, the 10,000 kept took 200 MB. Measured here, the parsed bodies stay within the budget.
    budget = 4 * 1024 * 1024
    bodies = LookupBodies(max_bytes=budget)
    tracemalloc.start()
    try:
        for index in range(1000):
            context = ",".join(f'"k{key}":{index}' for key in range(180))
            raw = b'{"sdk":"node","error":"E%d","context":{%s}}' % (index, context.encode())
            assert len(raw) <= LookupBodies.MAX_BODY_BYTES and bodies.validated(raw)[0] is not None
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert bodies.bytes <= budget and 0 < len(bodies._bodies) < 1000
    assert held <= budget * 1.25, f"{held / 2**20:.1f} MiB held for a budget of {budget / 2**20:.0f} MiB"
