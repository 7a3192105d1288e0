"""The client settings a patch may change, as one immutable value.

A patch produces a new ClientState that the client swaps in whole, so a patch is applied
entirely or not at all, and a rollback is one more swap. The field names are the operation
document's setting keys (language-neutral), which the shared test vectors use too.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Any

JsonValue = Any  # str | int | bool | None | dict[str, JsonValue] | list[JsonValue]


@dataclass(frozen=True)
class Backoff:
    """Delay before retry n (from 0): min(base * 2**n, max), fully jittered if `jitter`."""

    base_delay_ms: int = 200
    max_delay_ms: int = 5000
    jitter: bool = True

    def delay(self, attempt: int, *, retry_after: float | None, rng: random.Random) -> float | None:
        """Seconds to wait before retry `attempt`, or None when the server asks for more than
        `max_delay_ms`: retrying earlier than Retry-After would only be refused again."""
        ceiling = min(self.base_delay_ms * 2**attempt, self.max_delay_ms) / 1000
        wait = rng.uniform(0, ceiling) if self.jitter else ceiling
        if retry_after is not None:
            if retry_after * 1000 > self.max_delay_ms:
                return None
            wait = max(wait, retry_after)
        return wait


@dataclass(frozen=True)
class ClientState:
    base_url: str
    timeout_ms: int
    max_retries: int = 0  # automatic retries of 429 answers, with `backoff`
    default_currency: str | None = None
    api_version: str | None = None
    clock_skew_seconds: int = 0  # added to the local clock when signing requests
    credential: str | None = None  # name of the fallback credential in use; None: the primary key
    backoff: Backoff = Backoff()
    # No filled request fields here: a patch fills them for its retried call only
    # (molam.operations.Applied.fill), never for the calls after it.

    @property
    def timeout(self) -> float:
        return self.timeout_ms / 1000

    def as_dict(self) -> dict[str, JsonValue]:
        """The state as the shared test vectors write it."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, JsonValue]) -> ClientState:
        values = dict(data)
        values["backoff"] = Backoff(**values.get("backoff", {}))
        return cls(**values)


class StateCell:
    """The client's current state, swapped whole by patches and rollbacks.

    Reading or replacing one reference is atomic, so a request always sees one whole state,
    never half a patch; no lock is needed."""

    def __init__(self, state: ClientState) -> None:
        self._state = state

    def get(self) -> ClientState:
        return self._state

    def set(self, state: ClientState) -> None:
        self._state = state
