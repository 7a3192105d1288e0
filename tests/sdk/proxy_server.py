"""A real forward proxy over real TCP, for the SDKs' proxy tests: CONNECT tunnels (https:// URLs)
and absolute-form requests forwarded upstream (http:// URLs). It records what it saw.

With `credentials` ("user:password") it answers 407 to requests without that Proxy-Authorization.

As a process, for the Node SDK's tests: `python -m tests.sdk.proxy_server [--credentials U:P]`
prints its URL, then one JSON line per request it sees ({"method", "target", "authorized"}),
and serves until stdin closes.
"""

from __future__ import annotations

import base64
import http.client
import json
import select
import socket
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
}


@dataclass(frozen=True)
class Seen:
    method: str
    target: str  # host:port for CONNECT, the absolute URL otherwise
    authorized: bool


class ProxyServer:
    def __init__(self, *, credentials: str | None = None, on_request=None) -> None:
        self.seen: list[Seen] = []
        self.credentials = credentials
        self.on_request = on_request
        self.lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="proxy-server", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> ProxyServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def record(self, method: str, target: str, authorization: str | None) -> bool:
        expected = "Basic " + base64.b64encode(self.credentials.encode()).decode() if self.credentials else None
        seen = Seen(method, target, authorized=expected is None or authorization == expected)
        with self.lock:
            self.seen.append(seen)
        if self.on_request is not None:
            self.on_request(seen)
        return seen.authorized


def _handler(proxy: ProxyServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def _refuse(self, status: int, message: str) -> None:
            self.send_response(status, message)
            self.send_header("Proxy-Authenticate", 'Basic realm="test"')
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_CONNECT(self) -> None:
            if not proxy.record("CONNECT", self.path, self.headers.get("Proxy-Authorization")):
                self._refuse(407, "Proxy Authentication Required")
                return
            host, _, port = self.path.rpartition(":")
            try:
                upstream = socket.create_connection((host, int(port)), timeout=5)
            except OSError:
                self._refuse(502, "Bad Gateway")
                return
            self.send_response(200, "Connection established")
            self.end_headers()
            self._relay(self.connection, upstream)
            self.close_connection = True

        @staticmethod
        def _relay(client: socket.socket, upstream: socket.socket) -> None:
            sockets = [client, upstream]
            try:
                while True:
                    readable, _, _ = select.select(sockets, [], [], 10)
                    if not readable:
                        return
                    for sock in readable:
                        data = sock.recv(65536)
                        if not data:
                            return
                        (upstream if sock is client else client).sendall(data)
            except OSError:
                return
            finally:
                upstream.close()

        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if not proxy.record(self.command, self.path, self.headers.get("Proxy-Authorization")):
                self._refuse(407, "Proxy Authentication Required")
                return
            target = urlsplit(self.path)
            if target.scheme != "http" or not target.hostname:
                self._refuse(400, "Absolute http:// URL expected")
                return
            headers = {name: value for name, value in self.headers.items() if name.lower() not in _HOP_BY_HOP}
            upstream = http.client.HTTPConnection(target.hostname, target.port or 80, timeout=10)
            try:
                upstream.request(
                    self.command,
                    (target.path or "/") + (f"?{target.query}" if target.query else ""),
                    body=body,
                    headers=headers,
                )
                answer = upstream.getresponse()
                data = answer.read()
            finally:
                upstream.close()
            self.send_response(answer.status, answer.reason)
            for name, value in answer.getheaders():
                if name.lower() not in _HOP_BY_HOP and name.lower() not in ("content-length", "date", "server"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _forward

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="The test forward proxy, as a process.")
    parser.add_argument("--credentials", help="user:password required in Proxy-Authorization")
    arguments = parser.parse_args()
    lock = threading.Lock()

    def announce(seen: Seen) -> None:
        with lock:
            print(json.dumps({"method": seen.method, "target": seen.target, "authorized": seen.authorized}), flush=True)

    with ProxyServer(credentials=arguments.credentials, on_request=announce) as proxy:
        print(proxy.url, flush=True)
        sys.stdin.read()  # until the parent closes our stdin (or terminates us)


if __name__ == "__main__":
    main()
