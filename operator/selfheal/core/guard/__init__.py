"""The guard's pure logic: rules, Prometheus `for:` semantics, evidence, verdicts.

Nothing here does I/O or reads the clock: counts and `now` are passed in, so the same code
runs in the operator's loop, in tests with a controlled clock and in the simulation bench.
"""
