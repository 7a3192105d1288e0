"""What a call can raise. Every error the payments API or the network produces is a MolamError,
so a caller (and the healer) handles one family."""

from __future__ import annotations


class MolamError(Exception):
    """Base class. `error_text`, `status` and `code` are what the self-heal request carries."""

    status: int | None = None
    code: str | None = None

    @property
    def error_text(self) -> str:
        return str(self)


class ApiError(MolamError):
    """The payments API answered with an error status."""

    def __init__(
        self,
        *,
        status: int,
        reason: str,
        code: str | None,
        message: str,
        retry_after: float | None = None,
        server_time: float | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(f"{status} {reason}: {code or 'error'}: {message}")
        self.status, self.reason, self.code, self.message = status, reason, code, message
        self.retry_after = retry_after  # seconds, from Retry-After
        self.server_time = server_time  # epoch seconds, from the Date header
        self.field = field

    @property
    def error_text(self) -> str:
        # Stable text (no ids or amounts) so the runbook's "errors without a patch" report groups it;
        # it starts like the runbook's own example, "401 Unauthorized".
        return f"{self.status} {self.reason}: {self.code}" if self.code else f"{self.status} {self.reason}"


class MolamTimeout(MolamError):
    """No complete answer within the client's timeout."""

    code = "Timeout"

    @property
    def error_text(self) -> str:
        return f"Timeout: {self}"


class MolamConnectionError(MolamError):
    """The API could not be reached (refused, reset, DNS, TLS)."""

    code = "ConnectionError"

    @property
    def error_text(self) -> str:
        return f"ConnectionError: {self}"


class ConfigurationError(MolamError, ValueError):
    """The client was configured with something it cannot use: `option` names it, `reason` says why."""

    def __init__(self, reason: str, *, option: str | None = None) -> None:
        super().__init__(f"{option}: {reason}" if option else reason)
        self.option, self.reason = option, reason


class PatchRefused(Exception):
    """A patch failed verification or validation: it is not applied (fail closed).

    Internal to the healing loop; callers see the original API error instead."""
