"""One HTTP exchange with a deadline and a size cap (stdlib http.client).

A socket timeout alone bounds each read, not the exchange: a server that drips one byte at a
time would hold the caller for ever. Here every step gets the time left of one deadline, and
the body is read up to a cap, so neither the payments API nor the registry can hold a caller
longer than its timeout or fill its memory. No redirects are followed and no proxy is implied.
"""

from __future__ import annotations

import http.client
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from molam.errors import MolamConnectionError, MolamError, MolamTimeout

_CHUNK = 64 * 1024


class ResponseTooLarge(MolamError):
    pass


@dataclass(frozen=True)
class Response:
    status: int
    reason: str
    headers: dict[str, str]  # lower-case names
    body: bytes


def exchange(url: str, *, method: str, headers: dict[str, str], body: bytes | None, timeout: float,
             max_bytes: int) -> Response:
    """Send one request; MolamTimeout past `timeout` seconds, MolamConnectionError if unreachable."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise MolamConnectionError(f"unsupported URL {url!r}")
    deadline = time.monotonic() + timeout

    def left() -> float:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        return remaining

    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_class(parts.hostname, parts.port, timeout=left())
    try:
        connection.request(method, target, body=body, headers=headers)
        connection.sock.settimeout(left())
        response = connection.getresponse()
        chunks: list[bytes] = []
        size = 0
        while True:
            if connection.sock is not None:  # None once the body has been read to its end
                connection.sock.settimeout(left())
            chunk = response.read1(_CHUNK)
            if not chunk:
                break
            size += len(chunk)
            if size > max_bytes:
                raise ResponseTooLarge(f"response from {parts.hostname} is larger than {max_bytes} bytes")
            chunks.append(chunk)
        return Response(response.status, response.reason,
                        {name.lower(): value for name, value in response.getheaders()}, b"".join(chunks))
    except TimeoutError:
        raise MolamTimeout(f"no complete answer from {parts.hostname} within {timeout:g} s") from None
    except (OSError, http.client.HTTPException) as error:
        raise MolamConnectionError(f"{parts.hostname}: {error or type(error).__name__}") from None
    finally:
        connection.close()
