"""kopf handlers: a few lines each that call the domain code.

State is shared through kopf's `memo`: `memo.config` (OperatorConfig), `memo.pool` (the
registry connection pool) and `memo.seen` (the `patches_seen` index: the last known
generation and status of every SelfHealPatch, read by the registry watch).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf
import psycopg
import psycopg_pool

from selfheal import GROUP, PLURAL, VERSION
from selfheal.clock import utc_now
from selfheal.controller.backoff import retry_delay
from selfheal.controller.config import OperatorConfig
from selfheal.controller import guard_loop, guard_metrics
from selfheal.controller.registry_watch import watch_registry
from selfheal.models import SpecError
from selfheal.registry import store
from selfheal.registry.migrate import migrate
from selfheal.status import invalid_status, synced_status, unavailable_status
from selfheal.validation import operation_counts, validate_patch

PREFIX = "selfheal.molam.io"
REGISTRY_ERRORS = (psycopg.OperationalError, psycopg.InterfaceError, psycopg_pool.PoolTimeout, store.RegistryConflict)

log = logging.getLogger("selfheal.operator")


def configure(settings: kopf.OperatorSettings) -> None:
    # kopf's bookkeeping lives in annotations: the structural schema would prune status.kopf.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=PREFIX, key="last-handled-configuration",
    )
    settings.persistence.finalizer = f"{PREFIX}/registry"
    # Events are posted on purpose (kopf.event/warn below), not for every log line.
    settings.posting.level = logging.WARNING
    # Watches can go silent without these.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    settings.watching.inactivity_timeout = 600
    settings.batching.error_delays = (1, 2, 5, 10, 30)


@kopf.on.startup()
async def start(
    settings: kopf.OperatorSettings, memo: kopf.Memo, retry: int, patches_seen: kopf.Index, **_: Any,
) -> None:
    configure(settings)
    config: OperatorConfig = memo.config
    if config.run_migrations:
        try:
            applied = await asyncio.to_thread(migrate, config.database_url)
        except psycopg.OperationalError as error:
            raise kopf.TemporaryError(f"registry unreachable, cannot migrate yet: {error}",
                                      delay=retry_delay(retry, ceiling=config.max_retry_delay_seconds))
        if applied:
            log.info("applied registry migrations: %s", ", ".join(f"{m.number:04d}_{m.name}" for m in applied))
    memo.pool = psycopg_pool.AsyncConnectionPool(
        config.database_url, min_size=1, max_size=4, open=False, timeout=5,
        kwargs={"connect_timeout": 3}, check=psycopg_pool.AsyncConnectionPool.check_connection,
        reconnect_timeout=0,
    )
    await memo.pool.open(wait=False)
    memo.seen = patches_seen  # a live view, kept current by kopf
    memo.watch = asyncio.create_task(watch_registry(memo=memo), name="selfheal-registry-watch")
    memo.guard = guard_loop.start(memo=memo, index=_["guard_seen"])


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    watch = getattr(memo, "watch", None)
    if watch is not None:
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)
    if getattr(memo, "pool", None) is not None:
        await memo.pool.close()


def _source(meta: kopf.Meta) -> store.PatchSource:
    return store.PatchSource(namespace=meta["namespace"], name=meta["name"], uid=meta["uid"],
                             generation=int(meta["generation"]))


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
async def reconcile(
    spec: kopf.Spec, meta: kopf.Meta, status: kopf.Status, body: kopf.Body, patch: kopf.Patch,
    memo: kopf.Memo, retry: int, **_: Any,
) -> None:
    source = _source(meta)
    previous = dict(status)
    try:
        valid = validate_patch(dict(spec), allowed_hosts=memo.config.allowed_hosts)
    except SpecError as error:
        problems = error.problems
    else:
        problems = None
    if problems is not None:
        patch.status.update(invalid_status(previous, generation=source.generation, problems=problems, now=utc_now()))
        patch.status["operations"] = None
        kopf.warn(body, reason="InvalidSpec", message="; ".join(problems)[:1000])
        await _registry_call(memo, retry, patch, previous, source,
                             lambda conn: store.mark_invalid(conn, source=source, problems=problems))
        return

    outcome = await _registry_call(memo, retry, patch, previous, source,
                                   lambda conn: store.sync_patch(conn, source=source, spec=valid.spec,
                                                                 operations=valid.operations,
                                                                 rollback_operations=valid.rollback_operations))
    patch.status.update(synced_status(previous, generation=source.generation, row=outcome.state, now=utc_now()))
    patch.status["operations"] = operation_counts(valid)
    if outcome.written:
        # kopf.event, not kopf.info: posting.level (WARNING, above) drops kopf.info events.
        kopf.event(body, type="Normal", reason="Synced",
                   message=f"registry version {outcome.state.version} (id {outcome.state.id})")


@kopf.on.delete(GROUP, VERSION, PLURAL)
async def release(meta: kopf.Meta, status: kopf.Status, patch: kopf.Patch, memo: kopf.Memo, retry: int, **_: Any) -> None:
    # The finalizer holds the object until the registry row is inactive: a delete is never lost.
    source = _source(meta)
    await _registry_call(memo, retry, patch, dict(status), source, lambda conn: store.retire(conn, source=source))


@kopf.index(GROUP, VERSION, PLURAL)
def patches_seen(namespace: str, name: str, meta: kopf.Meta, status: kopf.Status, **_: Any) -> dict:
    # The registry watch compares the registry with what every SelfHealPatch last showed.
    return {(namespace, name): {"generation": meta.get("generation"), "uid": meta.get("uid"), "status": dict(status),
                                "resource_version": meta.get("resourceVersion")}}


async def _registry_call(memo, retry, patch, previous, source, action):
    """Run one registry transaction; while the registry is away, say so in status and retry."""
    config: OperatorConfig = memo.config
    try:
        async with memo.pool.connection() as conn:
            return await action(conn)
    except REGISTRY_ERRORS as error:
        guard_metrics.sync_failures.labels(reason=type(error).__name__).inc()
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        patch.status.update(unavailable_status(previous, generation=source.generation, error=reason, now=utc_now()))
        raise kopf.TemporaryError(f"registry unavailable: {reason}",
                                  delay=retry_delay(retry, ceiling=config.max_retry_delay_seconds))
