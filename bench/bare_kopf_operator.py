"""The operator scale benchmark's baseline: kopf itself, with a handler that does no work.

Watches one namespace's SelfHealPatch objects with the operator's kopf settings and API session
(controller/kopf_settings.py: progress and diff base in annotations, events only for warnings,
paged first list, bounded connections) and marks each one Ready through kopf's status patch, as
the operator does once an object is synced, without validating, compiling or touching the
registry. What this process costs in time and memory over N objects is what kopf
costs; the operator's figures beside it show what its own work adds.

Usage: KUBECONFIG=… python bench/bare_kopf_operator.py NAMESPACE
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import sys
from typing import Any

import kopf

from selfheal.controller import kopf_settings  # the operator's settings and login handler
from selfheal.core.resource import GROUP, PLURAL, VERSION


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    kopf_settings.configure(settings)


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
async def ready(meta: kopf.Meta, patch: kopf.Patch, **_: Any) -> None:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    generation = meta["generation"]
    patch.status["observedGeneration"] = generation
    patch.status["conditions"] = [
        {
            "type": "Ready",
            "status": "True",
            "reason": "Baseline",
            "message": "seen by the bare kopf baseline",
            "observedGeneration": generation,
            "lastTransitionTime": now,
        }
    ]


@kopf.on.delete(GROUP, VERSION, PLURAL)
async def release(**_: Any) -> None:
    """Nothing to release; here so that kopf keeps a finalizer on every object, as for the operator."""


def main() -> None:
    kopf.configure(log_format=kopf.LogFormat.FULL)
    logging.getLogger().setLevel(logging.INFO)
    asyncio.run(kopf.operator(standalone=True, namespaces=[sys.argv[1]], clusterwide=False))


if __name__ == "__main__":
    main()
