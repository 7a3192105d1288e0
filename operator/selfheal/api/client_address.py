"""Who a request comes from, for the per-address rate limit that applies before authentication.

The connection's peer, unless that peer is a proxy the API was told to trust (`--trusted-proxy`):
then the right-most X-Forwarded-For entry that is not itself a trusted proxy, since entries left
of the last trusted hop are whatever the client wrote. An IPv6 client counts by its /64, which
one client usually holds whole.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# A forwarding header longer than this is not believed (the peer is used).
MAX_FORWARDED_ENTRIES = 32


def parse_networks(values: Sequence[str]) -> tuple[Network, ...]:
    """CIDRs (or single addresses) of trusted proxies; ValueError naming the bad one."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{value.strip()!r} is not an IP address or CIDR") from None
    return tuple(networks)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address, proxies: tuple[Network, ...]) -> bool:
    return any(address.version == network.version and address in network for network in proxies)


def _key(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((int(address) >> 64 << 64, 64)))
    return str(address)


def client_key(peer: str | None, forwarded_for: str | None, proxies: tuple[Network, ...] = ()) -> str:
    """The per-address limit's key for a request from `peer` carrying `forwarded_for`."""
    address = _address(peer or "")
    if address is None:
        return (peer or "")[:64]
    if forwarded_for and proxies and _trusted(address, proxies):
        hops = forwarded_for.split(",")
        if len(hops) <= MAX_FORWARDED_ENTRIES:
            for hop in reversed(hops):
                forwarded = _address(hop)
                if forwarded is None:
                    break  # a garbled hop: nothing left of it can be placed, the last trusted hop answers
                address = forwarded
                if not _trusted(forwarded, proxies):
                    break
    return _key(address)
