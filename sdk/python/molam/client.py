"""MolamClient: the payments API over HTTP, healed by signed patches when a known error occurs.

    client = MolamClient(api_key=..., secret_key=..., enable_self_healing=True,
                         selfheal_token=..., trusted_keys={key_id: public_key_pem, ...},
                         on_patch_applied=lambda patch: print("Patch appliqué:", patch.description))
    client.create_payment(amount=5000, currency="XOF", country="SN")
    client.get_patch_history()

Payments API (JSON; signed as described in `molam.signing`):
    POST /v1/payments        create_payment(amount=, currency=None, **fields)
    GET  /v1/payments/{id}   get_payment(id)
    POST /v1/refunds         refund(payment_id, amount=None, **fields)
POST calls carry an `Idempotency-Key` shared by every attempt of the call, so a retry after a
timeout cannot charge twice. `Molam-Version` carries `api_version` when set.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlsplit

from molam import config, signing
from molam.bootstrap import load_bootstrap
from molam.envelope import ReplayGuard, TrustedKeys
from molam.errors import ApiError, ConfigurationError, MolamConnectionError, MolamError, MolamTimeout
from molam.healing import AppliedPatch, Healer
from molam.operations import ApplyContext
from molam.registry import RegistryClient
from molam.reports import ReportQueue
from molam.state import ClientState, StateCell
from molam.transport import HttpTransport, Transport

log = logging.getLogger("molam")

__version__ = "0.1.0"
USER_AGENT = f"molam-python/{__version__}"
DEFAULT_BASE_URL = "https://api.molam.com"
DEFAULT_ALLOWED_HOSTS = frozenset({"api.molam.com", "api-backup.molam.com"})
MAX_RESPONSE_BYTES = 1024 * 1024

# The runbook's six corrections, plus connection errors (its ConnectionError example).
HEALABLE_STATUSES = frozenset({400, 401, 429})
HEALABLE_CODES = frozenset({"invalid_currency", "invalid_signature"})


def healable(error: MolamError) -> bool:
    if isinstance(error, (MolamTimeout, MolamConnectionError)):
        return True
    return isinstance(error, ApiError) and (error.status in HEALABLE_STATUSES or error.code in HEALABLE_CODES)


@dataclass(frozen=True)
class Call:
    """One logical API call. Every attempt is built and signed afresh from the current state."""

    operation: str
    method: str
    path: str
    route: str  # the path without ids, for reports
    fields: Mapping[str, Any] | None = None  # JSON body fields as the caller gave them
    idempotency_key: str | None = None
    filled: Mapping[str, Any] = field(default_factory=dict)  # a patch's defaults, for this retry only

    def body(self, state: ClientState) -> bytes | None:
        if self.fields is None:
            return None
        # The caller's values win; then the patched default currency; then filled defaults.
        fields = {**self.filled, **{k: v for k, v in self.fields.items() if v is not None}}
        if "currency" in self.fields and self.fields.get("currency") is None and state.default_currency:
            fields["currency"] = state.default_currency
        return json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    def without_currency(self) -> Call:
        return replace(self, fields={**(self.fields or {}), "currency": None})

    def with_filled(self, filled: Mapping[str, Any]) -> Call:
        return replace(self, filled=dict(filled)) if filled else self


class MolamClient:
    def __init__(
        self,
        *,
        api_key: str,
        secret_key: str,
        enable_self_healing: bool = True,
        on_patch_applied: Callable[[AppliedPatch], object] | None = None,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 10.0,
        api_version: str | None = None,
        selfheal_url: str | None = None,
        selfheal_token: str | None = None,
        trusted_keys: Mapping[str, str | bytes] | None = None,
        bootstrap_envelopes: str | os.PathLike[str] | None = None,
        fallback_credentials: Mapping[str, str] | Collection[str] | None = None,
        allowed_hosts: frozenset[str] | set[str] | None = None,
        max_envelope_bytes: int = 64 * 1024,
        report_interval: float = 1.0,
        transport: Transport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`selfheal_url` and `selfheal_token` default to MOLAM_SELFHEAL_URL / MOLAM_SELFHEAL_TOKEN.
        `bootstrap_envelopes`: a file of signed envelopes the client starts with (molam.bootstrap).
        `fallback_credentials`: the credentials a patch may switch the API key to, by name. Default:
        environment variables named MOLAM_…, never MOLAM_SELFHEAL_… (this SDK's own settings) nor
        MOLAM_SECRET_KEY; a list or tuple of names (or `PREFIX_*` entries) narrows that to these
        environment variables; a mapping gives names and values. A patch naming anything else is
        refused (not applied, and reported).
        `allowed_hosts`: hosts a patch may move `base_url` to (default: Molam's API hosts and the
        initial base URL's). `transport`: what requests go through (default: pooled keep-alive
        HTTP through the environment's proxy; molam.testing passes a fake). `clock` is the wall
        clock used to sign requests and check envelope expiry (a test seam).
        Raises ConfigurationError, naming the option, for anything it cannot use."""
        self._api_key = config.credential("api_key", api_key)
        self._secret_key = config.credential("secret_key", secret_key)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 120:
            raise ConfigurationError("must be between 0 and 120 seconds", option="timeout")
        config.http_url("base_url", base_url)
        trusted = TrustedKeys(trusted_keys or {})
        self._clock = clock
        self._fallback = config.fallback_credentials("fallback_credentials", fallback_credentials)
        self._cell = StateCell(
            ClientState(base_url=base_url.rstrip("/"), timeout_ms=round(timeout * 1000), api_version=api_version)
        )
        self._allowed_hosts = frozenset(allowed_hosts or DEFAULT_ALLOWED_HOSTS | {urlsplit(base_url).hostname or ""})
        self._rng = random.Random()
        self._reports: ReportQueue | None = None
        self._healer: Healer | None = None
        settings = None
        if enable_self_healing:
            settings = config.self_heal_settings(
                token=selfheal_token or os.environ.get("MOLAM_SELFHEAL_TOKEN") or None,
                token_from_environment=not selfheal_token and bool(os.environ.get("MOLAM_SELFHEAL_TOKEN")),
                url=selfheal_url or os.environ.get("MOLAM_SELFHEAL_URL") or base_url,
                url_from_environment=not selfheal_url and bool(os.environ.get("MOLAM_SELFHEAL_URL")),
                has_trusted_keys=bool(trusted),
                bootstrap=bootstrap_envelopes,
            )
            if settings is None:
                # Fail closed: without a token and pinned keys no patch could be fetched and verified.
                log.warning("Molam SDK: self-healing disabled: it needs selfheal_token and trusted_keys")
        self._transport = transport if transport is not None else HttpTransport()
        if settings is not None:
            replay = ReplayGuard()
            bootstrap = (
                ()
                if bootstrap_envelopes is None
                else load_bootstrap(
                    bootstrap_envelopes,
                    trusted=trusted,
                    replay=replay,
                    now=datetime.fromtimestamp(clock(), UTC),
                ).patches
            )
            registry = None
            if settings.url is not None and settings.token is not None:
                registry = RegistryClient(
                    url=settings.url,
                    token=settings.token,
                    max_envelope_bytes=max_envelope_bytes,
                    user_agent=USER_AGENT,
                    transport=self._transport,
                )
                self._reports = ReportQueue(
                    lambda batch: registry.send_reports(batch, timeout=5.0), interval=report_interval
                )
            self._healer = Healer(
                registry=registry,
                trusted=trusted,
                reports=self._reports,
                on_patch_applied=on_patch_applied,
                clock=clock,
                replay=replay,
                bootstrap=bootstrap,
            )

    # --- Settings a patch may change (read-only here: patches change them) ---------------------

    @property
    def state(self) -> ClientState:
        return self._cell.get()

    @property
    def base_url(self) -> str:
        return self.state.base_url

    @property
    def timeout(self) -> float:
        return self.state.timeout

    @property
    def max_retries(self) -> int:
        return self.state.max_retries

    @property
    def default_currency(self) -> str | None:
        return self.state.default_currency

    @property
    def api_version(self) -> str | None:
        return self.state.api_version

    @property
    def clock_skew_seconds(self) -> int:
        return self.state.clock_skew_seconds

    @property
    def self_healing(self) -> bool:
        return self._healer is not None

    def get_patch_history(self) -> list[AppliedPatch]:
        return self._healer.history() if self._healer else []

    @property
    def pending_reports(self) -> int:
        return self._reports.pending if self._reports else 0

    def flush_reports(self) -> bool:
        """Send buffered reports now (they are sent in the background anyway); True if none are left."""
        return self._reports.flush() if self._reports else True

    def close(self) -> None:
        """Send the last buffered reports (waiting at most 2 s), then close pooled connections."""
        try:
            if self._reports is not None:
                self._reports.close()
        finally:
            self._transport.close()

    def __enter__(self) -> MolamClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- Payments --------------------------------------------------------------------------

    def create_payment(self, *, amount: int, currency: str | None = None, **fields: Any) -> dict[str, Any]:
        return self._call(
            Call(
                "create_payment",
                "POST",
                "/v1/payments",
                "/v1/payments",
                {"amount": amount, "currency": currency, **fields},
                str(uuid.uuid4()),
            )
        )

    def get_payment(self, payment_id: str) -> dict[str, Any]:
        return self._call(Call("get_payment", "GET", f"/v1/payments/{quote(payment_id, safe='')}", "/v1/payments/{id}"))

    def refund(self, payment_id: str, *, amount: int | None = None, **fields: Any) -> dict[str, Any]:
        body = {"payment_id": payment_id, **({"amount": amount} if amount is not None else {}), **fields}
        return self._call(Call("refund", "POST", "/v1/refunds", "/v1/refunds", body, str(uuid.uuid4())))

    # --- The call, its retries and its healing ---------------------------------------------

    def _call(self, call: Call) -> dict[str, Any]:
        try:
            return self._attempts(call)
        except MolamError as error:
            if self._healer is None or not healable(error):
                raise
            context = {
                "operation": call.operation,
                "method": call.method,
                "path": call.route,
                "sdk_version": __version__,
            }
            failure = error  # `error` is unbound once the except block ends; the retry must not depend on that
            return self._healer.heal(
                failure,
                context=context,
                cell=self._cell,
                apply_context=self._apply_context(failure),
                retry=lambda filled: self._attempts(self._retry_of(call, failure).with_filled(filled)),
            )

    def _apply_context(self, error: MolamError) -> ApplyContext:
        return ApplyContext(
            now=self._clock(),
            server_time=error.server_time if isinstance(error, ApiError) else None,
            has_credential=lambda name: self._credential_value(name) is not None,
            allowed_hosts=self._allowed_hosts,
            credentials=self._fallback,
        )

    def _retry_of(self, call: Call, error: MolamError) -> Call:
        # After invalid_currency, a patched default currency replaces the one the API refused.
        if error.code == "invalid_currency" and self._cell.get().default_currency:
            return call.without_currency()
        return call

    def _attempts(self, call: Call) -> dict[str, Any]:
        """Send, retrying 429 answers `max_retries` times with the state's backoff."""
        attempt = 0
        while True:
            state = self._cell.get()
            try:
                return self._send(call, state)
            except ApiError as error:
                if error.status != 429 or attempt >= state.max_retries:
                    raise
                wait = state.backoff.delay(attempt, retry_after=error.retry_after, rng=self._rng)
                if wait is None:
                    raise
                time.sleep(wait)
                attempt += 1

    def _send(self, call: Call, state: ClientState) -> dict[str, Any]:
        body = call.body(state)
        timestamp = int(self._clock()) + state.clock_skew_seconds
        headers = {
            "Authorization": f"Bearer {self._api_key_for(state)}",
            "Molam-Timestamp": str(timestamp),
            "Molam-Signature": signing.signature(
                secret_key=self._secret_key, timestamp=timestamp, method=call.method, path=call.path, body=body or b""
            ),
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        if body is not None:
            headers["Content-Type"] = "application/json"
        if call.idempotency_key:
            headers["Idempotency-Key"] = call.idempotency_key
        if state.api_version:
            headers["Molam-Version"] = state.api_version
        response = self._transport.exchange(
            state.base_url + call.path,
            method=call.method,
            headers=headers,
            body=body,
            timeout=state.timeout,
            max_bytes=MAX_RESPONSE_BYTES,
        )
        if 200 <= response.status < 300:
            try:
                return json.loads(response.body) if response.body else {}
            except ValueError:
                raise MolamError(f"{response.status} answer from the API is not JSON") from None
        raise _api_error(response.status, response.reason, response.headers, response.body)

    def _credential_value(self, name: str) -> str | None:
        if not self._fallback.allows(name):  # never read a variable outside the configured names
            return None
        values = self._fallback.values if self._fallback.values is not None else os.environ
        return values.get(name) or None

    def _api_key_for(self, state: ClientState) -> str:
        if state.credential is None:
            return self._api_key
        value = self._credential_value(state.credential)
        if value is None:
            raise ConfigurationError(f"{state.credential} is no longer configured", option="fallback_credentials")
        return value


def _api_error(status: int, reason: str, headers: Mapping[str, str], body: bytes) -> ApiError:
    try:
        detail = json.loads(body)
    except ValueError:
        detail = None
    detail = detail if isinstance(detail, dict) else {}
    code = detail.get("error") if isinstance(detail.get("error"), str) else None
    message = detail.get("message") if isinstance(detail.get("message"), str) else body[:200].decode("utf-8", "replace")
    return ApiError(
        status=status,
        reason=reason,
        code=code,
        message=message,
        retry_after=_retry_after(headers.get("retry-after")),
        server_time=_http_date(headers.get("date")),
        field=detail.get("field") if isinstance(detail.get("field"), str) else None,
    )


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    moment = _http_date(value)
    return max(0.0, moment - time.time()) if moment is not None else None


def _http_date(value: str | None) -> float | None:
    try:
        return parsedate_to_datetime(value).timestamp() if value else None
    except (TypeError, ValueError):
        return None
