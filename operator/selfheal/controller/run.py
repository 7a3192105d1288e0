"""Start kopf with our handlers and settings."""

from __future__ import annotations

import asyncio
from collections.abc import Collection

import kopf

# Imported for their handlers; `views` first, so that its index is bound before the loops start.
from selfheal.controller import views  # noqa: F401  isort: skip
from selfheal.controller import admission, guard_loop, handlers  # noqa: F401  isort: skip
from selfheal.controller.config import OperatorConfig
from selfheal.controller.state import OperatorState


def run_operator(
    *,
    config: OperatorConfig,
    namespaces: Collection[str] = (),
    liveness_port: int | None = None,
    stop_flag: asyncio.Event | None = None,
    ready_flag: asyncio.Event | None = None,
    debug: bool = False,
    json_logs: bool = False,
) -> None:
    kopf.configure(debug=debug, log_format=kopf.LogFormat.JSON if json_logs else kopf.LogFormat.FULL)
    if config.webhook is not None:
        admission.enable(webhook=config.webhook, namespaces=tuple(namespaces))
    kopf.run(
        standalone=True,  # one replica (Recreate); no peering objects needed
        clusterwide=not namespaces,
        namespaces=list(namespaces),
        memo=OperatorState.create(config),
        liveness_endpoint=f"http://0.0.0.0:{liveness_port}/healthz" if liveness_port else None,
        stop_flag=stop_flag,
        ready_flag=ready_flag,
    )
