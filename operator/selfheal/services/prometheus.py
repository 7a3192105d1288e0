"""Firing alerts from a Prometheus server (`/api/v1/alerts`), for the daily checklist."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request

from selfheal.core.reports.checklist import Alert


def firing_alerts(answer: dict, *, match: str) -> list[Alert]:
    """Firing alerts whose name matches `match` (a regex) in a Prometheus `/api/v1/alerts` answer."""
    if answer.get("status") != "success":
        raise ValueError(f"Prometheus answered {answer.get('status')!r}: {answer.get('error', '')}")
    pattern = re.compile(match, re.I)
    alerts = [
        Alert(name=a.get("labels", {}).get("alertname", ""), state=a.get("state", ""), labels=a.get("labels", {}))
        for a in answer.get("data", {}).get("alerts", [])
    ]
    return [a for a in alerts if a.state == "firing" and pattern.search(a.name)]


def query_firing_alerts(url: str, match: str, timeout: float) -> tuple[list[Alert] | None, str | None]:
    """(alerts, None), or (None, why) when Prometheus could not be asked or answered badly."""
    endpoint = urllib.parse.urljoin(url.rstrip("/") + "/", "api/v1/alerts")
    try:
        with urllib.request.urlopen(endpoint, timeout=timeout) as response:
            return firing_alerts(json.load(response), match=match), None
    except (OSError, ValueError, urllib.error.URLError) as error:
        return None, f"{endpoint}: {error}"
