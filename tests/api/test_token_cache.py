"""The API's token cache against the real registry: one check per token, revocation within an interval."""

from __future__ import annotations

import asyncio

import psycopg

from selfheal.api.token_cache import NOT_CACHED, TokenCache
from selfheal.registry import tokens
from tests.support import refused_port


def test_many_requests_with_a_new_token_cost_one_check(fresh_database):
    _, token = tokens.create_token(fresh_database, developer_id="dev-burst", role="developer")

    async def scenario() -> tuple[list, int]:
        cache = TokenCache(fresh_database, ttl=10)
        checks = 0
        original = cache._check

        async def counted(token_):
            nonlocal checks
            checks += 1
            return await original(token_)

        cache._check = counted
        answers = await asyncio.gather(*(cache.principal(token) for _ in range(50)))
        await cache.close()
        return answers, checks

    answers, checks = asyncio.run(scenario())
    assert checks == 1 and {a.developer_id for a in answers} == {"dev-burst"}


def test_an_expired_entry_answers_at_once_and_a_revocation_lands_after_one_refresh(fresh_database):
    token_id, token = tokens.create_token(fresh_database, developer_id="dev-revoke", role="developer")

    async def scenario() -> list:
        cache = TokenCache(fresh_database, ttl=0.2)
        seen = [(await cache.principal(token)).developer_id]
        tokens.revoke_token(fresh_database, token_id=token_id)
        await asyncio.sleep(0.25)  # expired, within the grace interval
        stale = cache.cached(token)
        seen.append(stale.developer_id if stale not in (None, NOT_CACHED) else stale)
        for _ in range(100):  # the refresh started by that answer lands
            await asyncio.sleep(0.01)
            if cache.cached(token) is None:
                break
        seen.append(cache.cached(token))
        await cache.close()
        return seen

    assert asyncio.run(scenario()) == ["dev-revoke", "dev-revoke", None]


def test_a_known_token_stays_known_while_the_registry_is_away_and_an_unknown_one_cannot_be_checked():
    with refused_port() as port:
        _registry_away(f"postgresql://nobody@127.0.0.1:{port}/none")


def _registry_away(url: str) -> None:
    async def scenario() -> tuple:
        cache = TokenCache(url, ttl=0.1)
        known = tokens.Principal("t1", "dev-known", "developer")
        cache._known["shk_known"] = (known, 0.0)  # long expired
        kept = await cache.principal("shk_known")
        try:
            await cache.principal("shk_unknown")
            unknown = "answered"
        except psycopg.Error:
            unknown = "refused"
        return kept, unknown

    kept, unknown = asyncio.run(scenario())
    assert kept.developer_id == "dev-known" and unknown == "refused"
