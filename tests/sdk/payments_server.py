"""A local payments API over real HTTP that really produces each error the SDK heals.

- 401 `api_key_revoked`:  the primary key is revoked; a fallback key (held by the SDK under a
  name, e.g. MOLAM_FALLBACK_API_KEY) is accepted.
- timeout:               `slow_seconds` delays POST /v1/payments beyond the client's timeout.
- 400 `invalid_currency`: currencies outside `currencies`.
- 401 `invalid_signature`: HMAC-SHA256 checked (`molam.signing`'s scheme) and the timestamp
  must be within `clock_tolerance` of the server clock: a client whose clock is skewed fails
  until it signs with the server's time (taken from the answer's Date header).
- 429 `rate_limited` with Retry-After: the next `rate_limited_requests` requests.
- 400 `missing_required_field`: POST /v1/payments needs amount, currency and `required_fields`.

POST requests honour Idempotency-Key: a retry after a timeout gets the payment the first,
slow attempt created, never a second one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class CountingHTTPServer(ThreadingHTTPServer):
    """Counts the TCP connections it accepts (the SDK keeps them alive); serves TLS when given a context."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler, *, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(address, handler)
        self.connections = 0
        self.tls = tls

    def get_request(self):
        sock, address = super().get_request()
        self.connections += 1
        if self.tls is not None:  # the handshake happens on the handler's thread, at its first read
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address


@dataclass
class Behaviour:
    secret_key: str = "sk_test_secret"
    api_keys: set[str] = field(default_factory=lambda: {"pk_primary", "pk_fallback"})
    revoked_keys: set[str] = field(default_factory=set)
    currencies: frozenset[str] = frozenset({"XOF", "EUR", "USD"})
    required_fields: tuple[str, ...] = ("country",)
    slow_seconds: float = 0.0
    rate_limited_requests: int = 0
    retry_after_seconds: int = 1
    clock_tolerance: int = 30
    close_connections: bool = False  # close every connection after its answer, as servers do with idle ones


class PaymentsServer:
    def __init__(self, behaviour: Behaviour | None = None, *, tls: ssl.SSLContext | None = None) -> None:
        self.behaviour = behaviour or Behaviour()
        self.payments: dict[str, dict[str, Any]] = {}
        self.idempotent: dict[str, dict[str, Any]] = {}
        self.requests: list[dict[str, Any]] = []  # what arrived: method, path, headers, body
        self.lock = threading.Lock()
        self._server = CountingHTTPServer(("127.0.0.1", 0), _handler(self), tls=tls)
        self.finished = 0  # requests fully handled, abandoned ones included
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="payments-server", daemon=True
        )

    @property
    def url(self) -> str:
        scheme = "https" if self._server.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self._server.server_address[1]}"

    @property
    def connections(self) -> int:
        """TCP connections accepted so far."""
        return self._server.connections

    def __enter__(self) -> PaymentsServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- the API ---------------------------------------------------------------------------

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict, dict]:
        b = self.behaviour
        with self.lock:
            self.requests.append({"method": method, "path": path, "headers": headers, "body": body})
        key = headers.get("authorization", "").removeprefix("Bearer ")
        if key in b.revoked_keys:
            return 401, {"error": "api_key_revoked", "message": "this API key has been revoked"}, {}
        if key not in b.api_keys:
            return 401, {"error": "invalid_api_key", "message": "unknown API key"}, {}
        if not self._signed(method, path, headers, body):
            return (
                401,
                {
                    "error": "invalid_signature",
                    "message": "signature does not match or timestamp is outside the allowed window",
                },
                {},
            )
        with self.lock:
            if b.rate_limited_requests > 0:
                b.rate_limited_requests -= 1
                return (
                    429,
                    {"error": "rate_limited", "message": "too many requests"},
                    {"Retry-After": str(b.retry_after_seconds)},
                )
        if method == "POST" and path == "/v1/payments":
            return self._create_payment(headers, body)
        if method == "GET" and path.startswith("/v1/payments/"):
            payment = self.payments.get(path.rsplit("/", 1)[1])
            return (200, payment, {}) if payment else (404, {"error": "not_found", "message": "no such payment"}, {})
        if method == "POST" and path == "/v1/refunds":
            fields = json.loads(body)
            payment = self.payments.get(fields.get("payment_id"))
            if payment is None:
                return 404, {"error": "not_found", "message": "no such payment"}, {}
            return (
                201,
                {
                    "id": f"re_{uuid.uuid4().hex[:12]}",
                    "payment_id": payment["id"],
                    "amount": fields.get("amount", payment["amount"]),
                },
                {},
            )
        return 404, {"error": "not_found", "message": f"no route {method} {path}"}, {}

    def _signed(self, method: str, path: str, headers: dict[str, str], body: bytes) -> bool:
        try:
            timestamp = int(headers.get("molam-timestamp", ""))
        except ValueError:
            return False
        if abs(time.time() - timestamp) > self.behaviour.clock_tolerance:
            return False
        message = f"{timestamp}.{method}.{path}.".encode() + body
        expected = "v1=" + hmac.new(self.behaviour.secret_key.encode(), message, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, headers.get("molam-signature", ""))

    def _create_payment(self, headers: dict[str, str], body: bytes) -> tuple[int, dict, dict]:
        b = self.behaviour
        fields = json.loads(body)
        for name in ("amount", "currency", *b.required_fields):
            if fields.get(name) in (None, ""):
                return 400, {"error": "missing_required_field", "message": f"{name} is required", "field": name}, {}
        if fields["currency"] not in b.currencies:
            return (
                400,
                {
                    "error": "invalid_currency",
                    "message": f"currency {fields['currency']} is not supported",
                    "field": "currency",
                },
                {},
            )
        if b.slow_seconds:
            time.sleep(b.slow_seconds)
        idempotency_key = headers.get("idempotency-key")
        with self.lock:
            if idempotency_key and idempotency_key in self.idempotent:
                return 201, self.idempotent[idempotency_key], {}
            payment = {"id": f"pay_{uuid.uuid4().hex[:12]}", "status": "succeeded", **fields}
            self.payments[payment["id"]] = payment
            if idempotency_key:
                self.idempotent[idempotency_key] = payment
        return 201, payment, {}


def _handler(server: PaymentsServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms wait on a kept-alive connection

        def _serve(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {name.lower(): value for name, value in self.headers.items()}
            try:
                status, document, extra = server.handle(self.command, self.path, headers, body)
            finally:
                with server.lock:
                    server.finished += 1
            data = json.dumps(document).encode()
            try:
                self.send_response(status)  # also sends Date: the server's clock, for re-signing
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timed out) first
            if server.behaviour.close_connections:
                self.close_connection = True  # without saying so: the client finds out on its next call

        do_GET = do_POST = _serve

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


# --- As a process, for SDKs in other languages: `python -m tests.sdk.payments_server --port N` ---
#
# Prints its URL on the first line of stdout and serves until stdin closes or it is terminated.
# Test-only control routes beside the API (never recorded as requests):
#   GET  /_test/state      {"requests": [{method, path, headers}], "payments": [ids], "finished": n}
#   POST /_test/behaviour  {field: value, ...} sets Behaviour fields (lists become sets/tuples)
#   POST /_test/reset      a fresh Behaviour, no payments, no requests


class ControlledPaymentsServer(PaymentsServer):
    def __init__(self, port: int = 0) -> None:
        super().__init__()
        if port:
            self._server.server_close()
            self._server = CountingHTTPServer(("127.0.0.1", port), _handler(self))
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="payments-server", daemon=True
            )
        self.control_requests = 0  # `finished` counts them too; they are taken out of what /_test/state says

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict, dict]:
        if not path.startswith("/_test/"):
            return super().handle(method, path, headers, body)
        with self.lock:
            self.control_requests += 1
            if path == "/_test/state":
                # This request is not finished yet; every earlier control request is.
                return (
                    200,
                    {
                        "requests": [
                            {"method": r["method"], "path": r["path"], "headers": r["headers"]} for r in self.requests
                        ],
                        "payments": list(self.payments),
                        "finished": self.finished - (self.control_requests - 1),
                    },
                    {},
                )
            if path == "/_test/reset":
                self.behaviour, self.payments, self.idempotent, self.requests = Behaviour(), {}, {}, []
                self.finished, self.control_requests = 0, 1  # this reset finishes after the counts restart
                return 200, {}, {}
            if path == "/_test/behaviour":
                for name, value in json.loads(body).items():
                    current = getattr(self.behaviour, name)  # AttributeError: an unknown field fails loudly
                    setattr(
                        self.behaviour,
                        name,
                        type(current)(value) if isinstance(current, (set, frozenset, tuple)) else value,
                    )
                return 200, {}, {}
        return 404, {"error": "not_found", "message": f"no test route {path}"}, {}


def main() -> None:
    import argparse
    import sys

    parser = argparse.ArgumentParser(description="The local payments test server, as a process.")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: a free one)")
    port = parser.parse_args().port
    with ControlledPaymentsServer(port) as server:
        print(server.url, flush=True)
        sys.stdin.read()  # until the parent closes our stdin (or terminates us)


if __name__ == "__main__":
    main()
