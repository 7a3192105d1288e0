"""Optional JSON webhook for guard decisions; Slack-compatible (`text`), with the figures alongside."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import aiohttp

log = logging.getLogger("selfheal.guard")


async def notify(*, url: str | None, text: str, details: Mapping[str, object]) -> None:
    """Post once, bounded in time; a notification never holds up or breaks the guard."""
    if not url:
        return
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            async with session.post(url, json={"text": text, "selfheal": dict(details)}) as response:
                if response.status >= 300:
                    log.warning("guard webhook answered %s", response.status)
    except (aiohttp.ClientError, TimeoutError) as error:
        log.warning("guard webhook failed: %s", error)
