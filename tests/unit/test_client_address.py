"""The per-address limit's key (api/client_address.py): the peer, or the client a trusted proxy names."""

from __future__ import annotations

import pytest

from selfheal.api.client_address import client_key, parse_networks

PROXIES = parse_networks(["10.0.0.0/8", "fd00::/8"])


@pytest.mark.parametrize(
    "peer, forwarded, proxies, key",
    [
        ("198.51.100.7", None, PROXIES, "198.51.100.7"),
        ("198.51.100.7", "203.0.113.9", PROXIES, "198.51.100.7"),  # the peer is no trusted proxy
        ("198.51.100.7", "203.0.113.9", (), "198.51.100.7"),  # no proxy trusted: header ignored
        ("10.1.2.3", "203.0.113.9", PROXIES, "203.0.113.9"),
        ("10.1.2.3", "1.1.1.1, 203.0.113.9, 10.4.4.4", PROXIES, "203.0.113.9"),  # right-most untrusted hop
        ("10.1.2.3", "garbage, 203.0.113.9", PROXIES, "203.0.113.9"),
        ("10.1.2.3", "203.0.113.9, garbage", PROXIES, "10.1.2.3"),  # the last hop is garbled: the proxy
        ("10.1.2.3", ", ".join(["203.0.113.9"] * 33), PROXIES, "10.1.2.3"),  # too long to believe
        ("10.1.2.3", "10.5.5.5", PROXIES, "10.5.5.5"),  # only proxies: the farthest one
        ("::ffff:10.1.2.3", "203.0.113.9", PROXIES, "203.0.113.9"),  # IPv4-mapped peer
        ("fd00::1", "2001:db8:1:2:3:4:5:6", PROXIES, "2001:db8:1:2::/64"),
        ("2001:db8:1:2:3:4:5:6", None, PROXIES, "2001:db8:1:2::/64"),
        (None, None, PROXIES, ""),
    ],
)
def test_the_key(peer, forwarded, proxies, key):
    assert client_key(peer, forwarded, proxies) == key


def test_a_bad_network_is_named():
    with pytest.raises(ValueError, match="'10.0.0.300' is not an IP address or CIDR"):
        parse_networks(["10.0.0.300"])
