"""Rate limits over real HTTP against the real registry, on a controlled clock.

The app is the real one (`build_app`, served by aiohttp on a port it binds itself, its tokens in
the test PostgreSQL); only the clock its token buckets read is the test's, so that the counts are
exact whatever the machine's speed: nothing refills between two requests unless the test moves
the clock. The buckets' arithmetic: tests/unit/test_ratelimit.py.
"""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp.test_utils import TestServer

from selfheal.api.app import KEY_ADDRESS_LIMITER, KEY_CATALOG, KEY_LIMITER, ApiSettings, build_app
from selfheal.api.ratelimit import RateLimiter
from selfheal.core.signing import SigningKey
from selfheal.registry import tokens


class ClockedLimiter(RateLimiter):
    """The real token bucket, reading the test's clock instead of the time the app passes in."""

    def __init__(self, *, clock: list[float], rate: float, burst: int) -> None:
        super().__init__(rate=rate, burst=burst)
        self.clock = clock

    def acquire(self, key: str, *, now: float) -> float:
        return super().acquire(key, now=self.clock[0])


async def _serve(app, scenario):
    async with TestServer(app, host="127.0.0.1", port=0) as server, aiohttp.ClientSession() as session:

        async def call(method: str, path: str, token: str | None = None, body: bytes | None = None):
            headers = {"Content-Type": "application/json"}
            if token is not None:
                headers["Authorization"] = f"Bearer {token}"
            async with session.request(method, server.make_url(path), headers=headers, data=body) as response:
                answer = await response.json(content_type=None) if response.status != 200 else None
                return response.status, response.headers.get("Retry-After"), answer

        for _ in range(600):  # the catalog loads in the background: ready first (no request spent on it)
            if app[KEY_CATALOG].snapshot is not None:
                break
            await asyncio.sleep(0.05)
        return await scenario(call)


def test_past_its_burst_a_token_gets_429_with_retry_after_until_its_bucket_refills(fresh_database):
    _, token = tokens.create_token(fresh_database, developer_id="dev-burst", role="developer")
    _, other = tokens.create_token(fresh_database, developer_id="dev-other", role="developer")
    clock = [1000.0]
    app = build_app(ApiSettings(database_url=fresh_database, signing_key=SigningKey.generate()))
    app[KEY_LIMITER] = ClockedLimiter(clock=clock, rate=2, burst=4)

    async def scenario(call):
        burst = [await call("GET", "/api/dev/patches", token) for _ in range(6)]
        another_token = await call("GET", "/api/dev/patches", other)
        clock[0] += 0.5  # one token's worth at 2 a second
        later = [await call("GET", "/api/dev/patches", token) for _ in range(2)]
        return burst, another_token, later

    burst, another_token, later = asyncio.run(_serve(app, scenario))
    assert [status for status, _, _ in burst] == [200] * 4 + [429] * 2
    _, retry_after, answer = burst[4]
    assert retry_after == "1" and (answer["error"], answer["message"]) == (
        "rate_limited",
        "too many requests for this token",
    )
    assert another_token[0] == 200  # its own bucket
    assert [status for status, _, _ in later] == [200, 429]


def test_past_its_rate_a_client_address_gets_429_before_authentication(fresh_database):
    clock = [1000.0]
    app = build_app(ApiSettings(database_url=fresh_database, signing_key=SigningKey.generate()))
    app[KEY_ADDRESS_LIMITER] = ClockedLimiter(clock=clock, rate=0.5, burst=3)
    body = b'{"sdk": "node", "error": "401 Unauthorized", "status": 401}'

    async def scenario(call):
        unknown = "shk_0123456789ab_" + "a" * 43  # well formed, in no database
        answers = [await call("POST", "/api/dev/self-heal", unknown, body) for _ in range(3)]
        answers += [await call("POST", "/api/dev/self-heal", token, body) for token in (unknown, "x" * 8000, None)]
        clock[0] += 2  # one request's worth at 0.5 a second
        answers.append(await call("POST", "/api/dev/self-heal", unknown, body))
        return answers

    answers = asyncio.run(_serve(app, scenario))
    assert [status for status, _, _ in answers] == [401, 401, 401, 429, 429, 429, 401]
    for _, retry_after, answer in answers[3:6]:  # whatever the token, or none
        assert retry_after == "2" and answer["message"] == "too many requests from this address"
