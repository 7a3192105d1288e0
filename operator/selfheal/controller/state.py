"""The operator's shared state, as kopf's `memo`: one typed object built before kopf starts.

kopf hands every handler a shallow copy of it: the pool, the views and the event are shared.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import psycopg_pool

from selfheal.controller.config import OperatorConfig
from selfheal.controller.registry_queue import RegistryQueue
from selfheal.controller.views import PatchViews


@dataclass(frozen=True)
class OperatorState:
    config: OperatorConfig
    # The registry's connections, opened by the startup handler (a pool opens inside the event loop).
    pool: psycopg_pool.AsyncConnectionPool
    # The handlers' registry writes, batched on the pool (started by the startup handler).
    registry: RegistryQueue
    # What every SelfHealPatch last showed (kopf's index, bound at startup).
    views: PatchViews = field(default_factory=lambda: PatchViews())
    # Set by the guard after it changed the registry: the registry watch mirrors it into status now.
    registry_changed: asyncio.Event = field(default_factory=asyncio.Event)
    # Handlers compiling and syncing at once, at most (a few batches ahead of the registry writers).
    sync_slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(200))
    # The loops started at startup (registry watch, guard), cancelled at cleanup.
    tasks: list[asyncio.Task] = field(default_factory=list)

    @classmethod
    def create(cls, config: OperatorConfig) -> OperatorState:
        pool = psycopg_pool.AsyncConnectionPool(
            config.database_url,
            min_size=1,
            max_size=config.pool_size,
            open=False,
            timeout=5,
            kwargs={"connect_timeout": 3},
            check=psycopg_pool.AsyncConnectionPool.check_connection,
            reconnect_timeout=0,
        )
        # The guard and the registry watch take a connection each now and then; writers get the rest.
        writers = max(1, config.pool_size - 2)
        return cls(config=config, pool=pool, registry=RegistryQueue(pool, writers=writers))
