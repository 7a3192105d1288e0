"""A test double for applications: the real MolamClient, healed by a fake registry, against a
fake payments API, all in memory (no network, no server, no sleeping on timeouts).

    from molam.testing import FakeMolam

    with FakeMolam() as fake:
        fake.payments.fail(status=401, code="api_key_revoked", when=lambda request: request.api_key == "pk_test")
        fake.registry.add_patch("401", [{"op": "use_fallback_credential", "name": "MOLAM_FALLBACK_API_KEY"}],
                                rollback=[{"op": "use_primary_credential"}])
        client = fake.client(api_key="pk_test", fallback_credentials={"MOLAM_FALLBACK_API_KEY": "pk_fallback"})
        your_code(client)
        assert client.get_patch_history()[0].success
        assert fake.reports()[0]["success"]

Patches are declared as compiled operations, the registry's own shape (`selfheal compile`
prints them). The fake registry signs them with a key of its own, which `fake.client()` pins,
so the client verifies, applies, retries, rolls back and reports exactly as in production; the
fake chooses the patch for an error by the registry's matching rules. The Node SDK's
`@molam/sdk/testing` is the same double.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import http
import itertools
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from molam.client import MolamClient
from molam.envelope import ENVELOPE_FORMAT, LANGUAGE
from molam.errors import MolamConnectionError, MolamTimeout, PatchRefused
from molam.matching import best_match
from molam.operations import document_operations
from molam.transport import Response

__all__ = ["FakeMolam", "FakePayments", "FakeRegistry", "FakeRequest", "Failure"]

SELFHEAL_URL = "https://selfheal.molam.invalid"  # never resolved: the fake transport answers for it
TOKEN = "fake-selfheal-token"


@dataclass(frozen=True)
class FakeRequest:
    """A request the fake payments API received."""

    method: str
    url: str
    host: str
    path: str
    headers: Mapping[str, str]  # lower-case names
    json: Any  # the decoded body, or None

    @property
    def api_key(self) -> str | None:
        value = self.headers.get("authorization", "")
        return value.removeprefix("Bearer ") if value.startswith("Bearer ") else None


@dataclass
class Failure:
    """A declared failure: an error answer (`status`), a timeout or an unreachable host."""

    status: int | None = None
    code: str | None = None
    message: str = "failure declared by the test"
    timeout: bool = False
    unreachable: bool = False
    when: Callable[[FakeRequest], bool] | None = None
    times: int | None = None  # None: every matching request
    retry_after: int | None = None
    field: str | None = None
    hits: int = 0

    def applies(self, request: FakeRequest) -> bool:
        return (self.times is None or self.hits < self.times) and (self.when is None or bool(self.when(request)))


class FakePayments:
    """The payments API: every call succeeds unless a failure declared with `fail()` applies."""

    def __init__(self) -> None:
        self.requests: list[FakeRequest] = []
        self.payments: dict[str, dict[str, Any]] = {}
        self._failures: list[Failure] = []
        self._idempotent: dict[str, tuple[int, dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def fail(
        self,
        *,
        status: int | None = None,
        code: str | None = None,
        message: str | None = None,
        timeout: bool = False,
        unreachable: bool = False,
        when: Callable[[FakeRequest], bool] | None = None,
        times: int | None = None,
        retry_after: int | None = None,
        field: str | None = None,
    ) -> Failure:
        """Fail the requests `when` selects (all by default), `times` times (always by default):
        with an error answer (`status`, `code`, `message`, `retry_after` for 429, `field` for 400),
        a timeout or an unreachable host. The first declared failure that applies wins."""
        if [status is not None, timeout, unreachable].count(True) != 1:
            raise ValueError("fail(): give exactly one of status=, timeout=True or unreachable=True")
        if status is not None and not (isinstance(status, int) and 400 <= status <= 599):
            raise ValueError(f"fail(): status must be an HTTP error status (400-599), got {status!r}")
        if times is not None and times < 1:
            raise ValueError("fail(): times must be at least 1")
        failure = Failure(
            status=status,
            code=code,
            message=message or "failure declared by the test",
            timeout=timeout,
            unreachable=unreachable,
            when=when,
            times=times,
            retry_after=retry_after,
            field=field,
        )
        with self._lock:
            self._failures.append(failure)
        return failure

    def clear_failures(self) -> None:
        with self._lock:
            self._failures.clear()

    def handle(self, request: FakeRequest) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self._lock:
            self.requests.append(request)
            failure = next((f for f in self._failures if f.applies(request)), None)
            if failure is not None:
                failure.hits += 1
        if failure is not None:
            if failure.timeout:
                raise MolamTimeout(f"no complete answer from {request.host} (a timeout declared by the test)")
            if failure.unreachable:
                raise MolamConnectionError(f"{request.host}: [Errno 111] Connection refused (declared by the test)")
            detail: dict[str, Any] = {"message": failure.message}
            if failure.code:
                detail["error"] = failure.code
            if failure.field:
                detail["field"] = failure.field
            extra = {"retry-after": str(failure.retry_after)} if failure.retry_after is not None else {}
            return failure.status, detail, extra
        return self._serve(request)

    def _serve(self, request: FakeRequest) -> tuple[int, dict[str, Any], dict[str, str]]:
        body = request.json if isinstance(request.json, dict) else {}
        with self._lock:
            key = request.headers.get("idempotency-key")
            if key and key in self._idempotent:  # a retry of the same call gets the same answer
                status, document = self._idempotent[key]
                return status, document, {}
            if request.method == "POST" and request.path == "/v1/payments":
                status, document = 201, {"id": f"pay_fake_{next(self._ids):06d}", "status": "succeeded", **body}
                self.payments[document["id"]] = document
            elif request.method == "GET" and request.path.startswith("/v1/payments/"):
                found = self.payments.get(request.path.rsplit("/", 1)[1])
                status, document = (
                    (200, found) if found else (404, {"error": "not_found", "message": "no such payment"})
                )
            elif request.method == "POST" and request.path == "/v1/refunds":
                payment = self.payments.get(body.get("payment_id"))
                if payment is None:
                    status, document = 404, {"error": "not_found", "message": "no such payment"}
                else:
                    status, document = (
                        201,
                        {
                            "id": f"re_fake_{next(self._ids):06d}",
                            "payment_id": payment["id"],
                            "amount": body.get("amount", payment.get("amount")),
                        },
                    )
            else:
                status, document = 404, {"error": "not_found", "message": f"no route {request.method} {request.path}"}
            if key and status < 300:
                self._idempotent[key] = (status, document)
        return status, document, {}


@dataclass(frozen=True)
class DeclaredPatch:
    id: str
    error_signature: str
    severity: str
    sequence: int
    version: str
    description: str
    operations: dict[str, Any]
    rollback_operations: dict[str, Any] | None


class FakeRegistry:
    """The registry API's two SDK routes: patches declared by the test, signed with its own key."""

    def __init__(self, *, envelope_ttl: int = 300) -> None:
        self._key = Ed25519PrivateKey.generate()
        raw = self._key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.key_id = hashlib.sha256(raw).hexdigest()[:16]
        self.public_key_pem = (
            self._key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )
        self.envelope_ttl = envelope_ttl
        self.unavailable = False  # True: lookups answer 503, as a registry that is down
        self.lookups: list[dict[str, Any]] = []
        self.received_reports: list[dict[str, Any]] = []
        self._patches: dict[str, DeclaredPatch] = {}
        self._sequence = itertools.count(1)
        self._lock = threading.Lock()

    @property
    def trusted_keys(self) -> dict[str, str]:
        return {self.key_id: self.public_key_pem}

    def add_patch(
        self,
        error_signature: str,
        operations: list[dict[str, Any]] | dict[str, Any],
        *,
        rollback: list[dict[str, Any]] | dict[str, Any] | None = None,
        description: str = "test patch",
        severity: str = "medium",
        version: str = "1.0.0",
        patch_id: str | None = None,
    ) -> str:
        """Serve a patch for errors its signature matches; returns its id. `operations` and
        `rollback`: a list of operations or a whole operation document."""
        if not isinstance(error_signature, str) or not error_signature.strip():
            raise ValueError("add_patch(): error_signature must be a non-empty string")
        documents = [_document(operations, "operations"), None if rollback is None else _document(rollback, "rollback")]
        patch = DeclaredPatch(
            id=patch_id or f"fake-{error_signature.lower().replace(' ', '-')}",
            error_signature=error_signature,
            severity=severity,
            sequence=next(self._sequence),
            version=version,
            description=description,
            operations=documents[0],
            rollback_operations=documents[1],
        )
        with self._lock:
            self._patches[patch.id] = patch
        return patch.id

    def remove_patch(self, patch_id: str) -> None:
        """Switch a patch off: the registry answers 404 for its errors from now on."""
        with self._lock:
            del self._patches[patch_id]

    def envelope(self, patch_id: str, *, now: datetime | None = None) -> dict[str, Any]:
        """The signed envelope the registry serves for a patch (e.g. to write a bootstrap file)."""
        patch = self._patches[patch_id]
        now = now or datetime.now(UTC)
        payload = {
            "patch_id": patch.id,
            "version": patch.version,
            "sequence": patch.sequence,
            "sdk_language": LANGUAGE,
            "error_signature": patch.error_signature,
            "description": patch.description,
            "severity": patch.severity,
            "operations": patch.operations,
            "rollback_operations": patch.rollback_operations,
            "issued_at": now.isoformat(timespec="seconds"),
            "expires_at": (now + timedelta(seconds=self.envelope_ttl)).isoformat(timespec="seconds"),
        }
        data = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        return {
            "format": ENVELOPE_FORMAT,
            "payload": base64.b64encode(data).decode("ascii"),
            "signatures": [
                {
                    "alg": "Ed25519",
                    "keyId": self.key_id,
                    "signature": base64.b64encode(self._key.sign(data)).decode("ascii"),
                }
            ],
        }

    def envelopes(self) -> list[dict[str, Any]]:
        """Every declared patch's envelope: a bootstrap file's content (`json.dump` it)."""
        return [self.envelope(patch_id) for patch_id in list(self._patches)]

    def handle(self, path: str, headers: Mapping[str, str], body: Any) -> tuple[int, dict[str, Any], dict[str, str]]:
        if headers.get("authorization") != f"Bearer {TOKEN}":
            return 401, {"error": "unauthorized", "message": "unknown or revoked token"}, {}
        if path == "/api/dev/self-heal/reports":
            with self._lock:
                self.received_reports.extend(body["reports"])
            return 202, {"accepted": len(body["reports"])}, {}
        if path != "/api/dev/self-heal":
            return 404, {"error": "not_found", "message": f"no route {path}"}, {}
        with self._lock:
            self.lookups.append(body)
            patches = list(self._patches.values())
        if self.unavailable:
            return 503, {"error": "unavailable", "message": "the fake registry is unavailable"}, {"retry-after": "1"}
        found = best_match(patches, message=body["error"], status=body.get("status"), code=body.get("code"))
        if found is None:
            return 404, {"error": "no_patch", "message": "no active patch for this error"}, {}
        patch, kind = found
        return (
            200,
            {
                "patch": {
                    "id": patch.id,
                    "version": patch.version,
                    "description": patch.description,
                    "severity": patch.severity,
                    "matched_by": kind,
                },
                "envelope": self.envelope(patch.id),
                # The real registry's receipt is an HMAC for the token; the SDK only sends it back.
                "receipt": f"fake-receipt-{patch.id}",
            },
            {},
        )


class FakeTransport:
    """Routes the client's requests: the fake registry's URL to it, everything else to the fake payments API."""

    def __init__(self, payments: FakePayments, registry: FakeRegistry) -> None:
        self._payments, self._registry = payments, registry

    def exchange(
        self, url: str, *, method: str, headers: dict[str, str], body: bytes | None, timeout: float, max_bytes: int
    ) -> Response:
        parts = urlsplit(url)
        lower = {name.lower(): value for name, value in headers.items()}
        document = json.loads(body) if body else None
        if url.startswith(SELFHEAL_URL + "/"):
            status, answer, extra = self._registry.handle(parts.path, lower, document)
        else:
            request = FakeRequest(
                method=method, url=url, host=parts.hostname or "", path=parts.path, headers=lower, json=document
            )
            status, answer, extra = self._payments.handle(request)
        data = json.dumps(answer, ensure_ascii=False).encode("utf-8")
        try:
            reason = http.HTTPStatus(status).phrase
        except ValueError:
            reason = ""
        return Response(
            status,
            reason,
            {"content-type": "application/json", "date": email.utils.formatdate(time.time(), usegmt=True), **extra},
            data,
        )

    def close(self) -> None:
        pass


class FakeMolam:
    """A fake payments API and a fake registry, and clients wired to both."""

    def __init__(self, *, envelope_ttl: int = 300) -> None:
        self.payments = FakePayments()
        self.registry = FakeRegistry(envelope_ttl=envelope_ttl)
        self.transport = FakeTransport(self.payments, self.registry)
        self._clients: list[MolamClient] = []

    def client(self, **options: Any) -> MolamClient:
        """A MolamClient healed by the fake registry; any MolamClient option may be given."""
        settings: dict[str, Any] = dict(
            api_key="pk_test_fake",
            secret_key="sk_test_fake",
            selfheal_url=SELFHEAL_URL,
            selfheal_token=TOKEN,
            trusted_keys=self.registry.trusted_keys,
            report_interval=3600.0,
        )  # reports are delivered by reports()
        client = MolamClient(**{**settings, **options}, transport=self.transport)
        self._clients.append(client)
        return client

    def reports(self) -> list[dict[str, Any]]:
        """Every outcome report the clients made so far, as the registry received them."""
        for client in self._clients:
            client.flush_reports()
        return list(self.registry.received_reports)

    def close(self) -> None:
        for client in self._clients:
            client.close()

    def __enter__(self) -> FakeMolam:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _document(operations: Any, what: str) -> dict[str, Any]:
    document = (
        operations
        if isinstance(operations, dict)
        else {"format": "selfheal.operations", "version": 1, "operations": operations}
    )
    try:
        document_operations(document)  # the SDK's own shape check: a typo fails here, not as a silent refusal
    except PatchRefused as error:
        raise ValueError(f"add_patch(): {what}: {error}") from None
    return document
