"""Hostile requests against a real `selfheal api`: each is refused cleanly, or served as documented.

Table-driven: malformed and non-standard JSON, numbers beyond a double, control characters,
lone surrogates, duplicate keys, deep nesting, wrong content types, oversized headers, tokens
and bodies, broken framing. Every case names the status and the error (and the field) it must
get; none may get a 5xx, and the server answers /healthz after each.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest

from tests.api_server import start_api_server
from tests.support import new_namespace, wait_until

LOOKUP, REPORTS, PATCHES = "/api/dev/self-heal", "/api/dev/self-heal/reports", "/api/dev/patches"
JSON = {"Content-Type": "application/json"}


def lookup(extra: str = "", *, error: str = '"401 Unauthorized"') -> bytes:
    return ('{"sdk": "node", "error": ' + error + extra + "}").encode()


def reports(*items: str) -> bytes:
    return ('{"reports": [' + ", ".join(items) + "]}").encode()


GOOD_REPORT = '{"sdk": "node", "error": "E_HOSTILE", "success": true}'


def report(context: str) -> str:
    return '{"sdk": "node", "error": "E_HOSTILE", "success": true, "context": ' + context + "}"


def patch_body(**changes: object) -> bytes:
    body = {
        "sdk_language": "python",
        "error_signature": "E_HOSTILE_PATCH",
        "patch_code": 'self.base_url = "https://api-backup.molam.com"',
        "description": "hostile-input suite",
        "severity": "low",
    }
    return json.dumps({**body, **changes}).encode()


@dataclass(frozen=True)
class Case:
    name: str
    raw: bytes | None
    status: int
    error: str | None = None
    field: str | None = None  # a field the answer must name (in `fields`, or in the message)
    path: str = LOOKUP
    method: str = "POST"
    token: str | None = "developer"  # "developer", "admin", None (no header), or the header's value
    headers: dict[str, str] = dataclasses.field(default_factory=lambda: dict(JSON))
    accepted: int | None = None  # for report batches answered 202
    wire: bytes | None = None  # sent as it is on a raw socket instead (framing cases)


CASES = [
    # Not JSON, or not the JSON we take.
    Case("empty body", b"", 400, "malformed_json"),
    Case("truncated object", b'{"sdk": "node", "error": ', 400, "malformed_json"),
    Case("top-level array", b'[{"sdk": "node", "error": "x"}]', 400, "invalid_request"),
    Case("top-level string", b'"401 Unauthorized"', 400, "invalid_request"),
    Case("top-level null", b"null", 400, "invalid_request"),
    Case("single quotes", b"{'sdk': 'node', 'error': 'x'}", 400, "malformed_json"),
    Case("comment", b'{"sdk": "node", /* hi */ "error": "x"}', 400, "malformed_json"),
    Case("trailing comma", b'{"sdk": "node", "error": "x",}', 400, "malformed_json"),
    Case("trailing data", lookup() + b" garbage", 400, "malformed_json"),
    Case("two objects", lookup() + lookup(), 400, "malformed_json"),
    Case("raw newline in a string", b'{"sdk": "node", "error": "a\nb"}', 400, "malformed_json"),
    Case("invalid UTF-8", b'{"sdk": "node", "error": "\xff\xfe"}', 400, "malformed_json"),
    Case("UTF-8 byte order mark", b"\xef\xbb\xbf" + lookup(), 400, "malformed_json"),
    Case("UTF-16 body", lookup().decode().encode("utf-16"), 400, "malformed_json"),
    Case("deep nesting (10,000)", lookup(', "context": {"a": ' + "[" * 10_000 + "]" * 10_000 + "}"), 400),
    # Values PostgreSQL cannot store: refused, naming the field, never recorded.
    Case("NaN in context", lookup(', "context": {"ratio": NaN}'), 400, "invalid_request", "context.ratio"),
    Case("Infinity in context", lookup(', "context": {"x": Infinity}'), 400, "invalid_request", "context.x"),
    Case("-Infinity in context", lookup(', "context": {"x": -Infinity}'), 400, "invalid_request", "context.x"),
    Case("1e999 in context", lookup(', "context": {"big": 1e999}'), 400, "invalid_request", "context.big"),
    Case("-1e999 nested", lookup(', "context": {"a": [1, {"b": -1e999}]}'), 400, "invalid_request", "context.a.1.b"),
    Case("400-digit float", lookup(', "context": {"f": 1' + "0" * 400 + ".5}"), 400, "invalid_request", "context.f"),
    Case("5,000-digit integer", lookup(', "context": {"n": ' + "9" * 5000 + "}"), 400, "malformed_json"),
    Case("NUL in error", lookup(error='"a\\u0000b"'), 400, "invalid_request", "error"),
    Case("NUL in a context key", lookup(', "context": {"k\\u0000": 1}'), 400, "invalid_request", "context.k"),
    Case("lone surrogate in error", lookup(error='"a\\ud800b"'), 400, "invalid_request", "error"),
    Case("lone low surrogate in context", lookup(', "context": {"s": "\\udc00"}'), 400, "invalid_request", "context.s"),
    # Types and bounds.
    Case("status 1e999", lookup(', "status": 1e999'), 400, "invalid_request", "status"),
    Case("status as a string", lookup(', "status": "401"'), 400, "invalid_request", "status"),
    Case("status as a boolean", lookup(', "status": true'), 400, "invalid_request", "status"),
    Case("status 401.5", lookup(', "status": 401.5'), 400, "invalid_request", "status"),
    Case("status 10**40", lookup(', "status": 1' + "0" * 40), 400, "invalid_request", "status"),
    Case("unknown sdk", b'{"sdk": "cobol", "error": "x"}', 400, "invalid_request", "sdk"),
    Case("error too long", lookup(error='"' + "e" * 2001 + '"'), 400, "invalid_request", "error"),
    Case("empty error", lookup(error='""'), 400, "invalid_request", "error"),
    Case("context not an object", lookup(', "context": [1, 2]'), 400, "invalid_request", "context"),
    # Valid JSON that is served as documented: a miss is a 404, recorded.
    Case("duplicate keys: the last wins, as in jsonb", b'{"sdk": "cobol", "sdk": "node", "error": "E_DUP"}', 404),
    Case("nesting 100 deep is stored", lookup(', "context": {"d": ' + "[" * 100 + "]" * 100 + "}"), 404),
    Case("U+2028 and ANSI escapes in error", lookup(error='"a\\u2028b\\u001b[31m"'), 404),
    Case("largest finite double", lookup(', "context": {"x": 1.7976931348623157e308}'), 404),
    # Content types.
    Case("text/plain", lookup(), 415, "unsupported_media_type", headers={"Content-Type": "text/plain"}),
    Case("form encoded", lookup(), 415, headers={"Content-Type": "application/x-www-form-urlencoded"}),
    Case("multipart", lookup(), 415, headers={"Content-Type": "multipart/form-data; boundary=x"}),
    Case("JSON in UTF-16", lookup(), 415, headers={"Content-Type": "application/json; charset=utf-16"}),
    Case("JSON, charset utf-8", lookup(), 404, headers={"Content-Type": "application/json; charset=UTF-8"}),
    Case("no content type", lookup(), 404, headers={}),
    # Authentication: refused before any lookup.
    Case("no Authorization header", lookup(), 401, "unauthorized", token=None),
    Case("Basic scheme", lookup(), 401, "unauthorized", token="Basic dXNlcjpwYXNz"),
    Case("8 KB token", lookup(), 401, "unauthorized", token="Bearer " + "t" * 8000),
    Case(
        "token with a control character (the HTTP parser)",
        lookup(),
        400,
        token="Bearer shk_0123456789ab_" + "a" * 42 + "\x7f",
    ),
    Case("well-formed unknown token", lookup(), 401, token="Bearer shk_0123456789ab_" + "a" * 43),
    Case("developer creating a patch", patch_body(), 403, "forbidden", path=PATCHES),
    # Sizes.
    Case("body over --max-body", lookup(', "context": {"pad": "' + "x" * 70_000 + '"}'), 413),
    # Report batches: a bad report costs only itself.
    Case("no reports", reports(), 400, "invalid_request", "reports", path=REPORTS),
    Case("501 reports", reports(*[GOOD_REPORT] * 501), 400, "invalid_request", "reports", path=REPORTS),
    Case("reports not a list", b'{"reports": {"0": {}}}', 400, "invalid_request", "reports", path=REPORTS),
    Case("unknown top-level key", b'{"reports": [' + GOOD_REPORT.encode() + b'], "x": 1}', 400, path=REPORTS),
    Case(
        "NaN in one report of three",
        reports(GOOD_REPORT, report('{"r": NaN}'), GOOD_REPORT),
        202,
        field="reports.1.context.r",
        path=REPORTS,
        accepted=2,
    ),
    Case(
        "1e999 in one report",
        reports(report('{"r": 1e999}'), GOOD_REPORT),
        202,
        field="reports.0.context.r",
        path=REPORTS,
        accepted=1,
    ),
    Case(
        "lone surrogate in one report",
        reports(GOOD_REPORT, '{"sdk": "node", "error": "\\ud83d", "success": false}'),
        202,
        field="reports.1.error",
        path=REPORTS,
        accepted=1,
    ),
    Case(
        "success as a string in one report",
        reports('{"sdk": "node", "error": "x", "success": "true"}', GOOD_REPORT),
        202,
        field="reports.0.success",
        path=REPORTS,
        accepted=1,
    ),
    Case(
        "every report bad",
        reports(report('{"r": NaN}'), report('{"r": Infinity}')),
        400,
        "invalid_request",
        "reports.1.context.r",
        path=REPORTS,
    ),
    Case(
        "NUL in a report's context", reports(report('{"k": "\\u0000"}')), 400, field="reports.0.context.k", path=REPORTS
    ),
    # Patches created through the API: compiled first, refused with line:column: reason.
    Case(
        "patch code with an import",
        patch_body(patch_code="import os"),
        400,
        "invalid_patch",
        "patch_code: 1:1",
        path=PATCHES,
        token="admin",
    ),
    Case(
        "patch code calling eval",
        patch_body(patch_code='eval("1")'),
        400,
        "invalid_patch",
        "patch_code: 1:1",
        path=PATCHES,
        token="admin",
    ),
    Case(
        "patch to a host off the allow-list",
        patch_body(patch_code='self.base_url = "https://evil.example"'),
        400,
        "invalid_patch",
        "patch_code: 1:",
        path=PATCHES,
        token="admin",
    ),
    Case(
        "patch with a literal secret",
        patch_body(patch_code='logger.warning("sk_live_4eC39HqLyjWDarjtT1zdp7dc")'),
        400,
        "invalid_patch",
        "patch_code: 1:",
        path=PATCHES,
        token="admin",
    ),
    Case(
        "rollback code that does not compile",
        patch_body(rollback_code="while True: pass"),
        400,
        "invalid_patch",
        "rollback_code: 1:",
        path=PATCHES,
        token="admin",
    ),
    Case("NaN in a patch body", patch_body()[:-1] + b', "x": NaN}', 400, "malformed_json", path=PATCHES, token="admin"),
    Case(
        "kill switch of an id with NUL",
        None,
        404,
        "no_such_patch",
        path=PATCHES + "/p%00x",
        method="DELETE",
        token="admin",
    ),
    Case(
        "kill switch of a 300-character id", None, 404, path=PATCHES + "/" + "p" * 300, method="DELETE", token="admin"
    ),
    Case(
        "kill switch with NUL in its reason",
        None,
        400,
        "invalid_request",
        "reason",
        path=PATCHES + "/p-none?reason=a%00b",
        method="DELETE",
        token="admin",
    ),
    # Framing, on a raw socket.
    Case(
        "header line over 8 KB",
        None,
        400,
        wire=b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 9000 + b"\r\n\r\n",
    ),
    Case(
        "chunked body over --max-body",
        None,
        413,
        wire=b"POST " + LOOKUP.encode() + b" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {developer}\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"".join(b"%x\r\n%s\r\n" % (8000, b" " * 8000) for _ in range(10))
        + b"0\r\n\r\n",
    ),
    Case(
        "Content-Length and Transfer-Encoding both",
        None,
        400,
        wire=b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ),
]


@pytest.fixture(scope="module")
def hostile_api(fresh_database, tmp_path_factory, devenv, kube_client):
    server = start_api_server(
        database_url=fresh_database,
        kubeconfig=devenv.kubeconfig,
        patch_namespace=new_namespace(kube_client, "hostile"),
        directory=tmp_path_factory.mktemp("hostile-api"),
        rate=10_000,
    )
    server.tokens = {"developer": server.token("hostile-dev"), "admin": server.token("hostile-admin", role="dev_admin")}
    yield server
    server.stop()


def send(server, case: Case) -> tuple[int, dict]:
    address = urlsplit(server.url)
    if case.wire is not None:
        with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
            sock.sendall(case.wire.replace(b"{developer}", server.tokens["developer"].encode()))
            answer = b""
            while b"\r\n\r\n" not in answer and (chunk := sock.recv(65536)):
                answer += chunk
        return int(answer.split(b" ", 2)[1]), {}
    headers = dict(case.headers)
    if case.token in server.tokens:
        headers["Authorization"] = f"Bearer {server.tokens[case.token]}"
    elif case.token is not None:
        headers["Authorization"] = case.token
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
    try:
        connection.request(case.method, case.path, body=case.raw, headers=headers)
        response = connection.getresponse()
        raw = response.read()
    finally:
        connection.close()
    try:
        return response.status, json.loads(raw)
    except ValueError:
        return response.status, {"raw": raw[:300]}


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_request(hostile_api, case: Case):
    status, answer = send(hostile_api, case)
    assert status == case.status, answer
    if case.error is not None:
        assert answer.get("error") == case.error, answer
    if case.field is not None:
        named = [item["field"] + ": " + item["reason"] for item in answer.get("fields", answer.get("rejected", []))]
        assert any(item.startswith(case.field) for item in named), answer
    if case.accepted is not None:
        assert answer["accepted"] == case.accepted, answer
    assert hostile_api.request("GET", "/healthz")[0] == 200


def test_there_are_at_least_forty_cases():
    assert len(CASES) >= 40 and len({case.name for case in CASES}) == len(CASES)


def test_no_hostile_value_reached_the_log_as_a_raw_control_character(hostile_api):
    for case in CASES:  # sent here too: this test must not rely on test_hostile_request having run first
        send(hostile_api, case)
    # The self-heal lines are written in batches, every 100 ms: wait for the U+2028 case's, escaped.
    wait_until(lambda: "a\\u2028b\\u001b[31m" in hostile_api.log(), timeout=10, what="the escaped line logged")
    text = hostile_api.log()
    assert "\u2028" not in text and "\x1b" not in text and "\x85" not in text
