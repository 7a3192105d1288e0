"""Unauthenticated traffic cannot grow the API (issue 14, point 2), against a real `selfheal api`.

A flood of distinct tokens, 8 KB malformed ones and well-formed unknown ones, leaves the
process's resident memory where it was: malformed tokens are refused before any lookup, unknown
ones are kept within a budget in bytes. And before authentication, each client address has a
rate limit of its own: 429 with Retry-After, whatever the token.
"""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import aiohttp
import pytest

from tests.api_server import start_api_server
from tests.support import new_namespace

FLOOD = 50_000
BODY = b'{"sdk": "node", "error": "401 Unauthorized", "status": 401}'


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def malformed_token(index: int) -> str:
    return f"x{index:08d}" + "A" * 8000  # the 8 KB a header line may hold


def unknown_token(index: int) -> str:
    return f"shk_{index:012x}_{secrets.token_urlsafe(32)}"  # well formed, in no database


async def send(url: str, tokens: list[str], *, connections: int = 16) -> dict[int, int]:
    """POST a lookup with each token, `connections` at a time; the count of each status."""
    statuses: dict[int, int] = {}
    queue = iter(tokens)

    async def worker(session: aiohttp.ClientSession) -> None:
        for token in queue:
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            async with session.post(url + "/api/dev/self-heal", data=BODY, headers=headers) as response:
                await response.read()
                statuses[response.status] = statuses.get(response.status, 0) + 1

    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(connections)))
    return statuses


def flood(url: str, start: int, count: int) -> dict[int, int]:
    tokens = [malformed_token(i) if i % 2 else unknown_token(i) for i in range(start, start + count)]
    return asyncio.run(send(url, tokens))


@pytest.fixture(scope="module")
def flooded_api(fresh_database, tmp_path_factory, devenv, kube_client):
    server = start_api_server(
        database_url=fresh_database,
        kubeconfig=devenv.kubeconfig,
        patch_namespace=new_namespace(kube_client, "flood"),
        directory=tmp_path_factory.mktemp("flood-api"),
        extra_args=("--address-rate", "100000"),  # the caches, not the limit, are under test here
    )
    yield server
    server.stop()


def test_a_flood_of_distinct_tokens_leaves_the_memory_bounded(flooded_api, capsys):
    pid = flooded_api.process.pid
    # Warm up: every code path taken, the unknown-token cache filled to its budget.
    assert set(flood(flooded_api.url, 0, 6_000)) == {401}
    before = rss_mib(pid)
    statuses = flood(flooded_api.url, 6_000, FLOOD)
    after = rss_mib(pid)
    with capsys.disabled():
        print(f"\nRSS of selfheal api: {before:.1f} MiB before {FLOOD} distinct tokens, {after:.1f} MiB after")
    assert statuses == {401: FLOOD}, statuses
    # Kept by their raw bytes, these tokens took 8 KB each: 200 MiB for this flood.
    assert after - before < 20, f"{before:.1f} MiB → {after:.1f} MiB"
    # A real token still works after the flood.
    token = flooded_api.token("after-flood")
    assert flooded_api.request("POST", "/api/dev/self-heal", token=token, raw=BODY)[0] in (200, 404)


@pytest.mark.parametrize(
    "token",
    [
        "x" * 8000,
        "shk_nope_nope",
        "shk_0123456789ab_" + "a" * 42,  # one character short
        "shk_0123456789AB_" + "a" * 43,  # upper-case hex
        "shk_0123456789ab_" + "a" * 42 + "é",
        "shk_0123456789ab_" + "a" * 42 + "+",  # not URL-safe base64
    ],
    ids=["8kb", "short", "secret-short", "upper-hex", "non-ascii", "plus"],
)
def test_a_malformed_token_is_refused_without_a_lookup(flooded_api, token):
    status, headers, body = flooded_api.request("POST", "/api/dev/self-heal", token=token, raw=BODY)
    assert (status, body["message"]) == (401, "malformed token") and headers["WWW-Authenticate"].startswith("Bearer")


def test_a_client_address_past_its_rate_gets_429_with_retry_after_before_authentication(
    fresh_database, tmp_path_factory, devenv, kube_client
):
    server = start_api_server(
        database_url=fresh_database,
        kubeconfig=devenv.kubeconfig,
        patch_namespace=new_namespace(kube_client, "address-rate"),
        directory=tmp_path_factory.mktemp("address-rate-api"),
        extra_args=("--address-rate", "5"),  # burst 10
    )
    try:
        # That --address-rate sets the bucket: 60 requests pass it only if they take over 10 s. The
        # exact counts, on a controlled clock, are tests/api/test_rate_limits.py's.
        tokens = [unknown_token(i) for i in range(30)] + [malformed_token(i) for i in range(30)]
        statuses = asyncio.run(send(server.url, tokens, connections=4))
        assert statuses.get(429, 0) >= 1 and set(statuses) == {401, 429}, statuses
        status, headers, body = server.request("POST", "/api/dev/self-heal", raw=BODY)  # no token at all
        assert (status, body["error"]) == (429, "rate_limited") and int(headers["Retry-After"]) >= 1
        assert body["message"] == "too many requests from this address"
    finally:
        server.stop()


def _lookup_from(server, forwarded_for: str | None) -> int:
    import urllib.error
    import urllib.request

    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {unknown_token(0)}"}
    if forwarded_for is not None:
        headers["X-Forwarded-For"] = forwarded_for
    request = urllib.request.Request(server.url + "/api/dev/self-heal", data=BODY, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.parametrize("trusted", [True, False], ids=["behind-a-trusted-proxy", "no-proxy-trusted"])
def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_rate(
    fresh_database, tmp_path_factory, devenv, kube_client, trusted
):
    """Behind an ingress every request comes from its address: with --trusted-proxy, the client it
    names in X-Forwarded-For is the key; without it, the header is not believed (a client writing
    its own header gets no fresh budget)."""
    server = start_api_server(
        database_url=fresh_database,
        kubeconfig=devenv.kubeconfig,
        patch_namespace=new_namespace(kube_client, "trusted-proxy"),
        directory=tmp_path_factory.mktemp("trusted-proxy-api"),
        extra_args=("--address-rate", "0.1", *(("--trusted-proxy", "127.0.0.0/8") if trusted else ())),  # burst 1
    )
    try:
        # The burst of one (untrusted, every request is 127.0.0.1's, whose readiness probes may have spent it).
        assert _lookup_from(server, "198.51.100.7") in ({401} if trusted else {401, 429})
        assert _lookup_from(server, "198.51.100.7") == 429
        # Another client through the same proxy; the client-written left part of the header is ignored.
        assert _lookup_from(server, "10.9.9.9, 198.51.100.8") == (401 if trusted else 429)
        assert _lookup_from(server, "203.0.113.1, 198.51.100.8") == 429
    finally:
        server.stop()
