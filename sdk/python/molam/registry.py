"""HTTP to the self-heal registry API: ask for a patch, send outcome reports.

    POST {selfheal_url}/api/dev/self-heal           {"sdk", "error", "status", "context", "code"?}
         200 {"patch": {...}, "envelope": {...}, "receipt": "..."}  ·  404 no patch
    POST {selfheal_url}/api/dev/self-heal/reports   {"reports": [...]}  →  202

Both carry `Authorization: Bearer <selfheal token>`; the developer id comes from the token.
A report on a patch carries the receipt of the answer that served it: the registry counts only
reports on patches it served to this token.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, NamedTuple

from molam.errors import MolamConnectionError, MolamTimeout, PatchRefused
from molam.transport import ResponseTooLarge, Transport

log = logging.getLogger("molam")

SELF_HEAL_PATH = "/api/dev/self-heal"
REPORTS_PATH = "/api/dev/self-heal/reports"
MAX_REPORT_ANSWER_BYTES = 16 * 1024
MAX_RECEIPT_LENGTH = 200


class Served(NamedTuple):
    envelope: Any  # not verified yet
    receipt: str | None  # sent back with the reports of this patch


class RegistryUnavailable(Exception):
    """Down, overloaded or rate-limiting: the last verified patches may stand in."""


@dataclass(frozen=True)
class RegistryClient:
    url: str
    token: str
    max_envelope_bytes: int
    user_agent: str
    transport: Transport

    def _post(self, path: str, body: dict[str, Any], *, timeout: float, max_bytes: int):
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": self.user_agent,
        }
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        return self.transport.exchange(
            self.url.rstrip("/") + path, method="POST", headers=headers, body=data, timeout=timeout, max_bytes=max_bytes
        )

    def lookup(self, body: dict[str, Any], *, timeout: float) -> Served | None:
        """The (unverified) envelope of the patch for this error and its receipt, or None if the
        registry has none."""
        try:
            response = self._post(SELF_HEAL_PATH, body, timeout=timeout, max_bytes=self.max_envelope_bytes)
        except ResponseTooLarge as error:
            raise PatchRefused(str(error)) from None
        except (MolamTimeout, MolamConnectionError) as error:
            raise RegistryUnavailable(str(error)) from None
        if response.status == 404:
            return None
        if response.status == 429 or response.status >= 500:
            raise RegistryUnavailable(f"registry answered {response.status}")
        if response.status != 200:
            raise PatchRefused(f"registry answered {response.status}: {response.body[:200]!r}")
        try:
            answer = json.loads(response.body)
            envelope = answer["envelope"]
        except (ValueError, TypeError, KeyError):
            raise PatchRefused("registry answer has no envelope") from None
        receipt = answer.get("receipt")
        return Served(envelope, receipt if isinstance(receipt, str) and len(receipt) <= MAX_RECEIPT_LENGTH else None)

    def send_reports(self, reports: list[dict[str, Any]], *, timeout: float) -> bool:
        """True once the batch needs no more sending; False to keep it and try again later."""
        try:
            response = self._post(
                REPORTS_PATH, {"reports": reports}, timeout=timeout, max_bytes=MAX_REPORT_ANSWER_BYTES
            )
        except (MolamTimeout, MolamConnectionError, ResponseTooLarge) as error:
            log.debug("self-heal reports not sent yet: %s", error)
            return False
        if response.status < 300:
            return True
        if response.status in (408, 429) or response.status >= 500:
            return False
        # A batch the API refuses (400, 401, 403) would be refused for ever: say so, don't loop.
        log.warning(
            "self-heal registry refused %d reports (%d): %s",
            len(reports),
            response.status,
            response.body[:300].decode("utf-8", "replace"),
        )
        return True
