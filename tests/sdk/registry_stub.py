"""A tiny real HTTP stand-in for the registry API's two SDK routes, serving envelopes signed in
the test. (The full registry API, end to end with the operator and kubectl, is the lead's
separate test; this one exercises the SDK against real HTTP and real signatures.)

    POST /api/dev/self-heal          → 200 {"patch", "envelope", "receipt"} | 404 no patch | `lookup_status`
    POST /api/dev/self-heal/reports  → 202 | `reports_status` (e.g. 503, to test buffering)
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.sdk.payments_server import CountingHTTPServer
from tests.sdk.sealing import CURRENT, TestKey, seal

TOKEN = "dev-token-for-tests"


def payload_for(
    patch_id: str,
    signature: str,
    operations: list[dict],
    rollback: list[dict] | None,
    *,
    version: str = "1.0.0",
    sequence: int = 1,
    ttl: int = 300,
    language: str = "python",
    description: str = "test patch",
    severity: str = "medium",
    now: datetime | None = None,
) -> dict:
    now = now or datetime.now(UTC)
    document = lambda ops: {"format": "selfheal.operations", "version": 1, "operations": ops}  # noqa: E731
    return {
        "patch_id": patch_id,
        "version": version,
        "sequence": sequence,
        "sdk_language": language,
        "error_signature": signature,
        "description": description,
        "severity": severity,
        "operations": document(operations),
        "rollback_operations": document(rollback) if rollback else None,
        "issued_at": now.isoformat(timespec="seconds"),
        "expires_at": (now + timedelta(seconds=ttl)).isoformat(timespec="seconds"),
    }


class RegistryStub:
    def __init__(self) -> None:
        self.patches: dict[str, dict] = {}  # error signature → payload (without times; stamped per request)
        self.key: TestKey = CURRENT
        self.tamper: Callable[[dict], dict] | None = None
        self.lookup_status: int | None = None  # answer this instead (e.g. 503)
        self.reports_status = 202
        self.lookups: list[dict] = []
        self.reports: list[dict] = []
        self.report_posts = 0
        self.lock = threading.Lock()
        self._server = CountingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.reports_gate = threading.Event()  # cleared: report posts wait (a slow registry)
        self.reports_gate.set()
        self.lookup_gate = threading.Event()  # cleared: lookups wait (a silent registry: the SDK times out)
        self.lookup_gate.set()
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="registry-stub", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def connections(self) -> int:
        """TCP connections accepted so far."""
        return self._server.connections

    def __enter__(self) -> RegistryStub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.lookup_gate.set()
        self.reports_gate.set()
        self._server.shutdown()
        self._server.server_close()

    def add(self, signature: str, operations: list[dict], rollback: list[dict] | None = None, **options: Any) -> str:
        patch_id = options.pop("patch_id", f"p-{signature}")
        self.patches[signature] = {"args": (patch_id, signature, operations, rollback), "options": options}
        return patch_id

    def handle(self, path: str, headers: dict[str, str], body: dict) -> tuple[int, dict]:
        if headers.get("authorization") != f"Bearer {TOKEN}":
            return 401, {"error": "unauthorized", "message": "unknown or revoked token"}
        if path == "/api/dev/self-heal/reports":
            with self.lock:
                self.report_posts += 1
            self.reports_gate.wait(10)
            with self.lock:
                if self.reports_status < 300:
                    self.reports.extend(body["reports"])
            return self.reports_status, {"accepted": len(body["reports"])}
        with self.lock:
            self.lookups.append(body)
        self.lookup_gate.wait(10)
        if self.lookup_status is not None:
            return self.lookup_status, {"error": "unavailable", "message": "stub says so"}
        # The registry's rules, reduced: the code (or the message's first word), then the status.
        entry = self.patches.get(body.get("code") or body["error"].split(":")[0]) or self.patches.get(
            str(body.get("status"))
        )
        if entry is None:
            return 404, {"error": "no_patch", "message": "no active patch"}
        payload = payload_for(*entry["args"], **entry["options"])
        envelope = seal(payload, self.key)
        if self.tamper:
            envelope = self.tamper(envelope)
        return 200, {
            "patch": {"id": payload["patch_id"], "version": payload["version"]},
            "envelope": envelope,
            "receipt": receipt_for(payload["patch_id"]),
        }


def receipt_for(patch_id: str) -> str:
    """The stub's receipt for a patch: the SDK must send it back, unread, with that patch's reports."""
    return f"stub-receipt-{patch_id}"


def _handler(stub: RegistryStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms wait on a kept-alive connection

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {name.lower(): value for name, value in self.headers.items()}
            status, document = stub.handle(self.path, headers, json.loads(raw))
            data = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler
