"""Start kopf with our handlers and settings."""

from __future__ import annotations

import asyncio
from collections.abc import Collection

import kopf

from selfheal.controller import admission, handlers  # noqa: F401  (registers the handlers)
from selfheal.controller.config import OperatorConfig


def run_operator(*, config: OperatorConfig, namespaces: Collection[str] = (), liveness_port: int | None = None,
                 stop_flag: asyncio.Event | None = None, ready_flag: asyncio.Event | None = None,
                 debug: bool = False) -> None:
    kopf.configure(debug=debug)
    if config.webhook is not None:
        admission.enable(webhook=config.webhook, namespaces=tuple(namespaces))
    kopf.run(
        standalone=True,  # one replica (Recreate); no peering objects needed
        clusterwide=not namespaces,
        namespaces=list(namespaces),
        memo=kopf.Memo(config=config),
        liveness_endpoint=f"http://0.0.0.0:{liveness_port}/healthz" if liveness_port else None,
        stop_flag=stop_flag,
        ready_flag=ready_flag,
    )
