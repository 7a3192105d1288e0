"""The operator's shared state, as kopf's `memo`: one typed object built before kopf starts.

kopf hands every handler a shallow copy of it: the pool, the views and the event are shared.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import psycopg_pool

from selfheal.controller.config import OperatorConfig
from selfheal.controller.views import PatchViews


@dataclass(frozen=True)
class OperatorState:
    config: OperatorConfig
    # The registry's connections, opened by the startup handler (a pool opens inside the event loop).
    pool: psycopg_pool.AsyncConnectionPool
    # What every SelfHealPatch last showed (kopf's index, bound at startup).
    views: PatchViews = field(default_factory=lambda: PatchViews())
    # Set by the guard after it changed the registry: the registry watch mirrors it into status now.
    registry_changed: asyncio.Event = field(default_factory=asyncio.Event)
    # The loops started at startup (registry watch, guard), cancelled at cleanup.
    tasks: list[asyncio.Task] = field(default_factory=list)

    @classmethod
    def create(cls, config: OperatorConfig) -> OperatorState:
        pool = psycopg_pool.AsyncConnectionPool(
            config.database_url,
            min_size=1,
            max_size=4,
            open=False,
            timeout=5,
            kwargs={"connect_timeout": 3},
            check=psycopg_pool.AsyncConnectionPool.check_connection,
            reconnect_timeout=0,
        )
        return cls(config=config, pool=pool)
