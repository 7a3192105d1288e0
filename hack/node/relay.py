#!/usr/bin/env python3
"""TCP relays from the pod network to services that listen on the host's loopback only.

    relay.py --plain LISTEN_HOST:PORT=127.0.0.1:PORT ...
             --tls LISTEN_HOST:PORT=127.0.0.1:PORT --cert C --key K --upstream-ca CA

The test world's kube-apiserver and PostgreSQL listen on 127.0.0.1, which a pod (in its own
network namespace) cannot reach. This relay listens on the node bridge's gateway address instead.
`--plain` copies bytes (PostgreSQL). `--tls` ends TLS with a certificate for the names pods dial
(the `kubernetes` Service's address) and opens TLS to the API server, whose certificate names
only 127.0.0.1 and localhost: requests and their bearer tokens pass unchanged, so every pod still
authenticates as its own ServiceAccount. Standard library only; stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import ssl


def address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()


def handler(target: tuple[str, int], upstream: ssl.SSLContext | None):
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*target, ssl=upstream)
        except (OSError, ssl.SSLError):
            writer.close()
            return
        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    return handle


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plain", action="append", default=[], metavar="LISTEN=TARGET")
    parser.add_argument("--tls", action="append", default=[], metavar="LISTEN=TARGET")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--upstream-ca")
    args = parser.parse_args()

    servers = []
    for spec in args.plain:
        listen, target = spec.split("=")
        servers.append(await asyncio.start_server(handler(address(target), None), *address(listen)))
    if args.tls:
        server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_side.load_cert_chain(args.cert, args.key)
        server_side.set_alpn_protocols(["http/1.1"])  # bytes are copied: both sides must speak the same
        client_side = ssl.create_default_context(cafile=args.upstream_ca)
        client_side.set_alpn_protocols(["http/1.1"])
        for spec in args.tls:
            listen, target = spec.split("=")
            servers.append(
                await asyncio.start_server(handler(address(target), client_side), *address(listen), ssl=server_side)
            )
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    print("relaying", flush=True)
    await stop.wait()
    for server in servers:
        server.close()


if __name__ == "__main__":
    asyncio.run(main())
