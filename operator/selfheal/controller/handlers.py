"""kopf handlers: a few lines each that call the services.

State is kopf's `memo`, one typed `OperatorState` (controller/state.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import kopf
import psycopg

from selfheal.controller import guard_loop, kopf_settings, status_writes
from selfheal.controller import metrics as guard_metrics
from selfheal.controller.registry_watch import watch_registry
from selfheal.controller.state import OperatorState
from selfheal.core.backoff import retry_delay
from selfheal.core.resource import GROUP, PLURAL, VERSION
from selfheal.core.status import PatchStatus
from selfheal.core.validation import operation_counts
from selfheal.registry.errors import REGISTRY_UNREACHABLE, first_line
from selfheal.registry.migrate import migrate
from selfheal.registry.store import PatchSource, RegistryConflict
from selfheal.services import sync

# A conflict (two writers raced on one row) is retried like an outage: the next try sees the winner.
RETRIED_ERRORS: tuple[type[Exception], ...] = (*REGISTRY_UNREACHABLE, RegistryConflict)

T = TypeVar("T")

log = logging.getLogger("selfheal.operator")


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, memo: OperatorState, retry: int, **_: Any) -> None:
    kopf_settings.configure(settings)
    config = memo.config
    if config.run_migrations:
        try:
            applied = await asyncio.to_thread(migrate, config.database_url)
        except psycopg.OperationalError as error:
            raise kopf.TemporaryError(
                f"registry unreachable, cannot migrate yet: {error}",
                delay=retry_delay(retry, ceiling=config.max_retry_delay_seconds),
            ) from error
        if applied:
            log.info("applied registry migrations: %s", ", ".join(f"{m.number:04d}_{m.name}" for m in applied))
    await memo.pool.open(wait=False)
    memo.tasks.extend(memo.registry.start())
    memo.tasks.append(asyncio.create_task(watch_registry(state=memo), name="selfheal-registry-watch"))
    memo.tasks.append(guard_loop.start(state=memo))


@kopf.on.cleanup()
async def stop(memo: OperatorState, **_: Any) -> None:
    for task in memo.tasks:
        task.cancel()
    await asyncio.gather(*memo.tasks, return_exceptions=True)
    await memo.pool.close()


def _source(meta: kopf.Meta) -> PatchSource:
    return PatchSource(
        namespace=meta["namespace"], name=meta["name"], uid=meta["uid"], generation=int(meta["generation"])
    )


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
async def reconcile(
    spec: kopf.Spec,
    meta: kopf.Meta,
    status: kopf.Status,
    body: kopf.Body,
    patch: kopf.Patch,
    memo: OperatorState,
    retry: int,
    **_: Any,
) -> None:
    # Over a backlog kopf runs every object's handler at once: only so many compile and hold their
    # result while their write waits; the others wait here first, holding nothing of their own.
    async with memo.sync_slots:
        await _reconcile(spec=spec, meta=meta, status=status, body=body, patch=patch, memo=memo, retry=retry)


async def _reconcile(
    *,
    spec: kopf.Spec,
    meta: kopf.Meta,
    status: kopf.Status,
    body: kopf.Body,
    patch: kopf.Patch,
    memo: OperatorState,
    retry: int,
) -> None:
    source = _source(meta)
    previous: PatchStatus = dict(status)  # type: ignore[assignment]
    checked = sync.check(spec, allowed_hosts=memo.config.allowed_hosts)
    if isinstance(checked, list):
        status_writes.invalid(patch, previous, generation=source.generation, problems=checked)
        kopf.warn(body, reason="InvalidSpec", message="; ".join(checked)[:1000])
        await _registry_call(
            memo,
            retry,
            patch,
            previous,
            source,
            lambda conn: sync.record_invalid(conn, source=source, problems=checked),
        )
        return

    outcome = await _registry_call(
        memo, retry, patch, previous, source, lambda conn: sync.record_valid(conn, source=source, valid=checked)
    )
    status_writes.synced(
        patch, previous, generation=source.generation, row=outcome.state, operations=operation_counts(checked)
    )
    if outcome.written:
        # kopf.event, not kopf.info: posting.level (WARNING, above) drops kopf.info events.
        kopf.event(
            body,
            type="Normal",
            reason="Synced",
            message=f"registry version {outcome.state.version} (id {outcome.state.id})",
        )


@kopf.on.delete(GROUP, VERSION, PLURAL)
async def release(
    meta: kopf.Meta, status: kopf.Status, patch: kopf.Patch, memo: OperatorState, retry: int, **_: Any
) -> None:
    # The finalizer holds the object until the registry row is inactive: a delete is never lost.
    source = _source(meta)
    await _registry_call(
        memo,
        retry,
        patch,
        PatchStatus(**dict(status)),  # type: ignore[typeddict-item]
        source,
        lambda conn: sync.retire(conn, source=source),
    )


async def _registry_call(
    memo: OperatorState,
    retry: int,
    patch: kopf.Patch,
    previous: PatchStatus,
    source: PatchSource,
    action: Callable[[psycopg.AsyncConnection], Awaitable[T]],
) -> T:
    """Run one registry write (queued, batched); while the registry is away, say so in status and retry."""
    try:
        return await memo.registry.run(action)
    except RETRIED_ERRORS as error:
        guard_metrics.sync_failures.labels(reason=type(error).__name__).inc()
        reason = first_line(error)
        status_writes.unavailable(patch, previous, generation=source.generation, error=reason)
        raise kopf.TemporaryError(
            f"registry unavailable: {reason}", delay=retry_delay(retry, ceiling=memo.config.max_retry_delay_seconds)
        ) from error
