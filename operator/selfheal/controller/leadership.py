"""Leader election: exactly one operator replica syncs and runs the guard; the others stand by.

The leader holds a coordination.k8s.io/v1 Lease and renews it every few seconds; a standby
takes it once it has seen no renewal for the lease's duration (core/lease.py). A leader that
cannot renew before its deadline stops acting at once, before any standby may take over, so two
replicas never act together. A leader that stops cleanly releases the lease: the next one takes
over within a retry period instead of a lease duration.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
import socket
import time
from dataclasses import dataclass
from typing import Any

import kubernetes

from selfheal.core.lease import LeaseRecord, Observation, next_step, observe
from selfheal.services import kube

log = logging.getLogger("selfheal.leader")


@dataclass(frozen=True)
class LeaderElectionConfig:
    namespace: str
    name: str = "selfheal-operator"
    # A standby takes over once it saw no renewal for this long; 15 s is the goal for a takeover.
    lease_seconds: int = 8
    # The leader renews this often, and gives up acting when it could not renew for `renew_deadline`.
    renew_seconds: float = 2.0
    renew_deadline_seconds: float = 6.0
    # How often a standby looks at the lease.
    retry_seconds: float = 1.0
    identity: str = ""

    def holder_identity(self) -> str:
        return self.identity or f"{os.environ.get('POD_NAME') or socket.gethostname()}_{os.getpid()}"


def _now_micro() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _record(lease: Any) -> LeaseRecord:
    spec = lease.spec
    renew = spec.renew_time
    return LeaseRecord(
        holder=spec.holder_identity,
        duration_seconds=int(spec.lease_duration_seconds or 0),
        renew_time=renew.isoformat() if hasattr(renew, "isoformat") else renew,
        transitions=int(spec.lease_transitions or 0),
    )


class LeaderElector:
    def __init__(self, config: LeaderElectionConfig) -> None:
        self.config = config
        self.identity = config.holder_identity()
        self._observation: Observation | None = None
        self._api = kubernetes.client.CoordinationV1Api(kube.api_client())

    async def acquire(self) -> None:
        """Return once this replica holds the lease."""
        log.info(
            "leader election: %s stands by for lease %s/%s", self.identity, self.config.namespace, self.config.name
        )
        while not await self._try():
            await asyncio.sleep(self.config.retry_seconds)
        log.warning("leader election: %s leads (lease %s/%s)", self.identity, self.config.namespace, self.config.name)

    async def keep(self, lost: asyncio.Event) -> None:
        """Renew until cancelled; set `lost` when the lease could not be renewed in time."""
        last_renewal = time.monotonic()
        while True:
            await asyncio.sleep(self.config.renew_seconds)
            try:
                if await self._try():
                    last_renewal = time.monotonic()
                    continue
                log.error("leader election: %s lost the lease to another replica", self.identity)
            except Exception as error:  # the API server away: keep trying until the deadline
                log.warning("leader election: renewal failed: %s", error)
                if time.monotonic() - last_renewal < self.config.renew_deadline_seconds:
                    continue
                log.error(
                    "leader election: %s could not renew for %.0f s", self.identity, self.config.renew_deadline_seconds
                )
            lost.set()
            return

    async def release(self) -> None:
        """Hand the lease back (a clean stop): a standby takes over at its next look."""
        try:
            lease: Any = await asyncio.to_thread(
                self._api.read_namespaced_lease, self.config.name, self.config.namespace
            )
            if lease.spec is None or lease.spec.holder_identity != self.identity:
                return
            lease.spec.holder_identity = None
            await asyncio.to_thread(self._api.replace_namespaced_lease, self.config.name, self.config.namespace, lease)
            log.info("leader election: %s released the lease", self.identity)
        except Exception as error:  # best effort: the lease expires anyway
            log.warning("leader election: could not release the lease: %s", error)

    async def _try(self) -> bool:
        """One look at the lease, acting on it; True when this replica holds it afterwards."""
        api, config = self._api, self.config
        try:
            lease = await asyncio.to_thread(api.read_namespaced_lease, config.name, config.namespace)
        except kubernetes.client.ApiException as error:
            if error.status != 404:
                raise
            lease = None
        record = _record(lease) if lease is not None else None
        if record is not None:
            self._observation = observe(self._observation, record, now=time.monotonic())
        step = next_step(identity=self.identity, record=record, observation=self._observation, now=time.monotonic())
        if step == "wait":
            return False
        body = self._body(lease, take=step in ("create", "take"))
        try:
            if step == "create":
                await asyncio.to_thread(api.create_namespaced_lease, config.namespace, body)
            else:  # the resourceVersion in `body` makes a race with another candidate a 409
                await asyncio.to_thread(api.replace_namespaced_lease, config.name, config.namespace, body)
        except kubernetes.client.ApiException as error:
            if error.status in (409, 422):
                return False  # another replica got there first
            raise
        return True

    def _body(self, lease: Any, *, take: bool) -> Any:
        now = _now_micro()
        if lease is None:
            lease = kubernetes.client.V1Lease(
                metadata=kubernetes.client.V1ObjectMeta(name=self.config.name, namespace=self.config.namespace),
                spec=kubernetes.client.V1LeaseSpec(lease_transitions=0),
            )
        spec = lease.spec
        if take:
            spec.acquire_time = now
            spec.lease_transitions = int(spec.lease_transitions or 0) + (1 if spec.holder_identity else 0)
        spec.holder_identity = self.identity
        spec.lease_duration_seconds = self.config.lease_seconds
        spec.renew_time = now
        return lease
