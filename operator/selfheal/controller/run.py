"""Start the operator: the admission webhook and the health endpoint at once, kopf when leading.

Without leader election the process leads from the start (one replica). With it, every replica
serves the webhook and answers its probes, and only the replica holding the Lease runs kopf
(sync, registry watch, guard); a leader that loses the lease stops acting and exits, so that its
pod restarts as a standby.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Collection

import kopf
from aiohttp import web

# Imported for their handlers.
from selfheal.controller import views  # noqa: F401  isort: skip
from selfheal.controller import guard_loop, handlers  # noqa: F401  isort: skip
from selfheal.controller import admission
from selfheal.controller.config import OperatorConfig
from selfheal.controller.leadership import LeaderElectionConfig, LeaderElector
from selfheal.controller.state import OperatorState

log = logging.getLogger("selfheal.operator")

EXIT_LEADERSHIP_LOST = 3


class LeadershipLost(SystemExit):
    def __init__(self) -> None:
        super().__init__(EXIT_LEADERSHIP_LOST)


def run_operator(
    *,
    config: OperatorConfig,
    namespaces: Collection[str] = (),
    liveness_port: int | None = None,
    stop_flag: asyncio.Event | None = None,
    ready_flag: asyncio.Event | None = None,
    debug: bool = False,
    json_logs: bool = False,
    leader_election: LeaderElectionConfig | None = None,
) -> None:
    kopf.configure(debug=debug, log_format=kopf.LogFormat.JSON if json_logs else kopf.LogFormat.FULL)
    asyncio.run(
        _operate(
            config=config,
            namespaces=tuple(namespaces),
            liveness_port=liveness_port,
            stop_flag=stop_flag,
            ready_flag=ready_flag,
            leader_election=leader_election,
        )
    )


async def _operate(
    *,
    config: OperatorConfig,
    namespaces: tuple[str, ...],
    liveness_port: int | None,
    stop_flag: asyncio.Event | None,
    ready_flag: asyncio.Event | None,
    leader_election: LeaderElectionConfig | None,
) -> None:
    stop = stop_flag or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    kopf_ready = ready_flag or asyncio.Event()
    health = _Health(kopf_ready=kopf_ready, standby=leader_election is not None)
    runners = []
    if liveness_port:
        runners.append(await health.serve(port=liveness_port))
    if config.webhook is not None:
        runners.append(
            await admission.serve(webhook=config.webhook, allowed_hosts=config.allowed_hosts, namespaces=namespaces)
        )
    try:
        elector = LeaderElector(leader_election) if leader_election is not None else None
        if elector is not None and not await _first(elector.acquire(), stop.wait()):
            return  # stopped while standing by
        health.standby = False
        await _lead(config=config, namespaces=namespaces, stop=stop, ready=kopf_ready, elector=elector)
    finally:
        for runner in runners:
            await runner.cleanup()


async def _lead(
    *,
    config: OperatorConfig,
    namespaces: tuple[str, ...],
    stop: asyncio.Event,
    ready: asyncio.Event,
    elector: LeaderElector | None,
) -> None:
    lost = asyncio.Event()
    keeper = asyncio.create_task(elector.keep(lost)) if elector is not None else None
    kopf_stop = asyncio.Event()
    relay = asyncio.create_task(_first(stop.wait(), lost.wait()))
    relay.add_done_callback(lambda _: kopf_stop.set())
    try:
        await kopf.operator(
            standalone=True,  # leadership is the Lease's, not kopf's peering
            clusterwide=not namespaces,
            namespaces=list(namespaces),
            memo=OperatorState.create(config),
            stop_flag=kopf_stop,
            ready_flag=ready,
        )
    finally:
        relay.cancel()
        if keeper is not None:
            keeper.cancel()
    if lost.is_set():
        log.error("leadership lost: stopped acting; exiting so that this replica restarts as a standby")
        raise LeadershipLost()
    if elector is not None:
        await elector.release()


async def _first(*awaitables) -> bool:
    """Wait for the first of `awaitables`; True when it was the first one. The others are cancelled."""
    tasks = [asyncio.ensure_future(awaitable) for awaitable in awaitables]
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for task in done:
        task.result()  # an error in the first one surfaces here
    return tasks[0] in done


class _Health:
    """`/healthz`: 200 while standing by, and once kopf has started when leading (before that, the
    operator is still starting). `/readyz`: 200 while the process serves (the webhook's Service)."""

    def __init__(self, *, kopf_ready: asyncio.Event, standby: bool) -> None:
        self.kopf_ready, self.standby = kopf_ready, standby

    async def serve(self, *, port: int) -> web.AppRunner:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host="0.0.0.0", port=port).start()
        log.info("probes serving on http://0.0.0.0:%d (/healthz, /readyz)", port)  # whoever started us knows it bound
        return runner

    async def _healthz(self, request: web.Request) -> web.Response:
        if self.standby:
            return web.json_response({"status": "standby"})
        if self.kopf_ready.is_set():
            return web.json_response({"status": "leading"})
        return web.json_response({"status": "starting"}, status=503)

    async def _readyz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "standby" if self.standby else "leading"})
