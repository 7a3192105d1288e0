"""HTTP for the SDK (stdlib http.client): kept-alive connections, the proxy the environment
names, one deadline and a size cap per exchange.

Connections: after a complete answer the connection goes back to a small pool per (scheme,
host, port, proxy) and the next call to that host reuses it, so a busy client does not pay a
TCP and TLS handshake per call. A pooled connection the server has closed meanwhile is noticed
before reuse (its socket is readable while idle) and dropped; if one still fails before any
answer arrives, the request goes once more on a fresh connection. That resend is safe here:
payment POSTs carry an Idempotency-Key, lookups are reads.

Proxies: HTTPS_PROXY for https:// URLs, HTTP_PROXY for http:// ones (lower-case names win, as
curl and the standard library read them), NO_PROXY to bypass them; read when the client is
created. https:// goes through a CONNECT tunnel, so the proxy sees the host, never the request.

Deadline: a socket timeout alone bounds each read, not the exchange: a server that drips one
byte at a time would hold the caller for ever. Here every step gets the time left of one
deadline, and the body is read up to a cap, so neither the payments API nor the registry can
hold a caller longer than its timeout or fill its memory. No redirects are followed.
"""

from __future__ import annotations

import base64
import http.client
import os
import select
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import unquote, urlsplit
from urllib.request import proxy_bypass_environment

from molam.errors import ConfigurationError, MolamConnectionError, MolamError, MolamTimeout

_CHUNK = 64 * 1024
MAX_IDLE_PER_HOST = 4  # idle connections kept per host; one is enough for calls made one at a time
IDLE_SECONDS = 30.0  # older idle connections are dropped: NATs and load balancers forget them silently


class ResponseTooLarge(MolamError):
    pass


class AnswerCutShort(OSError):
    """The connection broke while an answer was arriving: the request was served, never resend it."""


@dataclass(frozen=True)
class Response:
    status: int
    reason: str
    headers: dict[str, str]  # lower-case names
    body: bytes


class Transport(Protocol):
    """What the client and its registry client send requests through (`molam.testing` has a fake)."""

    def exchange(
        self, url: str, *, method: str, headers: dict[str, str], body: bytes | None, timeout: float, max_bytes: int
    ) -> Response: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Proxy:
    host: str
    port: int
    authorization: str | None  # Proxy-Authorization, from user:password in the proxy URL


def proxies_from_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """{"http": URL, "https": URL, "no": "host,…"}, read as the standard library's
    getproxies_environment reads them (the Node SDK reads them the same way)."""
    environ = os.environ if environ is None else environ
    proxies: dict[str, str] = {}
    for name, value in environ.items():
        if value and name.lower().endswith("_proxy"):
            proxies[name.lower()[:-6]] = value
    if "REQUEST_METHOD" in environ:  # a CGI script: HTTP_PROXY may come from a client's "Proxy:" header
        proxies.pop("http", None)
    for name, value in environ.items():
        if name.endswith("_proxy"):  # then the lower-case names, which win
            if value:
                proxies[name.lower()[:-6]] = value
            else:
                proxies.pop(name.lower()[:-6], None)
    return proxies


def proxy_for(scheme: str, host: str, port: int | None, proxies: Mapping[str, str]) -> str | None:
    """The proxy URL for a request, or None when there is none or NO_PROXY bypasses it."""
    url = proxies.get(scheme)
    if not url:
        return None
    if proxy_bypass_environment(f"{host}:{port}" if port else host, proxies):
        return None
    return url


def parse_proxy(url: str, *, variable: str) -> Proxy:
    """An http:// proxy URL (a bare host:port is taken as one, as curl does)."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme != "http":
        raise ConfigurationError(f"{url!r}: only http:// proxies are supported", option=variable)
    try:
        port = parts.port or 80
    except ValueError:
        raise ConfigurationError(f"{url!r}: the port is not a number", option=variable) from None
    if not parts.hostname:
        raise ConfigurationError(f"{url!r}: no proxy host", option=variable)
    authorization = None
    if parts.username is not None:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        authorization = "Basic " + base64.b64encode(credentials).decode("ascii")
    return Proxy(parts.hostname, port, authorization)


class HttpTransport:
    """Pooled keep-alive connections, through the environment's proxy; safe to share between threads."""

    def __init__(self, *, environ: Mapping[str, str] | None = None) -> None:
        self._proxies = proxies_from_environment(environ)
        for scheme in ("http", "https"):  # a bad proxy variable is a configuration error now, not on a call
            if self._proxies.get(scheme):
                parse_proxy(self._proxies[scheme], variable=f"{scheme.upper()}_PROXY")
        self._idle: dict[tuple, list[tuple[http.client.HTTPConnection, float]]] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._tls: ssl.SSLContext | None = None  # loading the CA store once, not per connection

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection, _ in connections:
                connection.close()

    def exchange(
        self, url: str, *, method: str, headers: dict[str, str], body: bytes | None, timeout: float, max_bytes: int
    ) -> Response:
        """Send one request; MolamTimeout past `timeout` seconds, MolamConnectionError if unreachable."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise MolamConnectionError(f"unsupported URL {url!r}")
        try:
            port = parts.port
        except ValueError:
            raise MolamConnectionError(f"unsupported URL {url!r}") from None
        deadline = time.monotonic() + timeout

        def left() -> float:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            return remaining

        proxy_url = proxy_for(parts.scheme, parts.hostname, port, self._proxies)
        proxy = parse_proxy(proxy_url, variable=f"{parts.scheme.upper()}_PROXY") if proxy_url else None
        key = (parts.scheme, parts.hostname, port, proxy_url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        sent_headers = dict(headers)
        if proxy is not None and parts.scheme == "http":
            path = f"http://{parts.netloc.rpartition('@')[2]}{path}"  # absolute form, for the proxy to forward
            if proxy.authorization:
                sent_headers["Proxy-Authorization"] = proxy.authorization
        try:
            for attempt in (1, 2):
                connection, reused = self._connection(key, parts.scheme, parts.hostname, port, proxy, left())
                try:
                    response, keep = _round_trip(
                        connection, method, path, body, sent_headers, left, max_bytes, parts.hostname
                    )
                except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError):
                    connection.close()
                    if reused and attempt == 1:
                        continue  # the server closed the idle connection as we reused it: a fresh one
                    raise
                except BaseException:
                    connection.close()
                    raise
                self._release(key, connection, keep)
                return response
            raise AssertionError("unreachable")
        except TimeoutError:
            raise MolamTimeout(f"no complete answer from {parts.hostname} within {timeout:g} s") from None
        except (OSError, http.client.HTTPException) as error:
            raise MolamConnectionError(f"{parts.hostname}: {error or type(error).__name__}") from None

    def _connection(
        self, key: tuple, scheme: str, host: str, port: int | None, proxy: Proxy | None, timeout: float
    ) -> tuple[http.client.HTTPConnection, bool]:
        now = time.monotonic()
        with self._lock:
            idle = self._idle.get(key, [])
            while idle:
                connection, since = idle.pop()
                if now - since < IDLE_SECONDS and connection.sock is not None and not _readable(connection.sock):
                    connection.sock.settimeout(timeout)
                    return connection, True
                connection.close()  # closed by the server (EOF is readable), or idle too long
        if scheme == "https" and self._tls is None:
            self._tls = ssl.create_default_context()
        if proxy is None:
            if scheme == "https":
                return http.client.HTTPSConnection(host, port, timeout=timeout, context=self._tls), False
            return http.client.HTTPConnection(host, port, timeout=timeout), False
        if scheme == "https":
            connection = http.client.HTTPSConnection(proxy.host, proxy.port, timeout=timeout, context=self._tls)
            connection.set_tunnel(
                host, port or 443, headers={"Proxy-Authorization": proxy.authorization} if proxy.authorization else None
            )
            return connection, False
        return http.client.HTTPConnection(proxy.host, proxy.port, timeout=timeout), False

    def _release(self, key: tuple, connection: http.client.HTTPConnection, keep: bool) -> None:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if keep and not self._closed and connection.sock is not None and len(idle) < MAX_IDLE_PER_HOST:
                idle.append((connection, time.monotonic()))
                return
        connection.close()


def _round_trip(
    connection: http.client.HTTPConnection,
    method: str,
    path: str,
    body: bytes | None,
    headers: dict[str, str],
    left,
    max_bytes: int,
    host: str,
) -> tuple[Response, bool]:
    """The answer, read to its end within the deadline, and whether the connection may be reused."""
    connection.timeout = left()  # used when connecting
    connection.request(method, path, body=body, headers=headers)
    connection.sock.settimeout(left())
    response = connection.getresponse()
    try:
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
                raise ResponseTooLarge(f"response from {host} is larger than {max_bytes} bytes")
            chunks.append(chunk)
    except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError) as error:
        raise AnswerCutShort(f"answer cut short ({error})") from None  # part of an answer came: never resend
    response.close()  # read to its end: the connection is idle again (read1 does not say so by itself)
    answer = Response(
        response.status,
        response.reason,
        {name.lower(): value for name, value in response.getheaders()},
        b"".join(chunks),
    )
    return answer, not response.will_close


def _readable(sock) -> bool:
    """An idle keep-alive socket is readable only when the server closed it (or broke protocol)."""
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    return bool(select.select([sock], [], [], 0)[0])
