"""kopf's settings and its API session, for the operator (and for its scale benchmark's baseline)."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import kopf

from selfheal.core.resource import FINALIZER, KOPF_PREFIX


def configure(settings: kopf.OperatorSettings) -> None:
    # kopf's bookkeeping lives in annotations: the structural schema would prune status.kopf.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=KOPF_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=KOPF_PREFIX,
        key="last-handled-configuration",
    )
    settings.persistence.finalizer = FINALIZER
    # Events are posted on purpose (kopf.event/warn below), not for every log line.
    settings.posting.level = logging.WARNING
    # Watches can go silent without these.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    settings.watching.inactivity_timeout = 600
    # The first list in pages: one page of objects in memory at a time, not the whole backlog's reply.
    settings.watching.chunk_size = 500
    settings.batching.error_delays = (1, 2, 5, 10, 30)


# Connections to the API server at most. kopf's own session has no limit: started over a backlog,
# every object's first PATCH opened a TLS connection of its own, thousands at once, which timed
# out at the API server and kept hundreds of MiB of TLS buffers resident. Requests queue instead.
API_CONNECTIONS = 20


@kopf.on.login()
async def login(**kwargs: Any) -> kopf.AiohttpSession | None:
    """kopf's usual login (kubeconfig, else the service account), through a bounded session."""
    info = kopf.login_via_client(**kwargs)
    if info is None:
        return None
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=API_CONNECTIONS, ssl=info.as_ssl_context()),
        headers=info.as_http_headers(),
        proxy=info.proxy_url,
        trust_env=info.trust_env,
    )
    return kopf.AiohttpSession(
        server=info.server,
        default_namespace=info.default_namespace,
        expiration=info.expiration,
        aiohttp_session=session,
    )
