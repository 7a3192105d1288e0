"""Retry delays (pure logic)."""


def retry_delay(attempt: int, *, ceiling: float) -> float:
    """1, 2, 4, … seconds, capped: fast first retries, bounded load while the registry is away."""
    return float(min(2 ** min(attempt, 16), ceiling))
