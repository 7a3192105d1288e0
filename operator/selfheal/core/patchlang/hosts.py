"""The allow-list of API hosts a patch may point an SDK at (an operator setting).

An entry is an exact lowercase host name (`api.molam.com`) or `*.` and a domain
(`*.molam.com`), which allows every host strictly below that domain but not the domain
itself. The default allows exactly the runbook's two hosts: a wildcard would also allow any
forgotten or taken-over subdomain.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

DEFAULT_ALLOWED_HOSTS = ("api.molam.com", "api-backup.molam.com")

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
HOST_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})+")


@dataclass(frozen=True)
class AllowedHosts:
    exact: frozenset[str]
    domains: frozenset[str]  # from `*.domain` entries

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowedHosts:
        """From setting values; raises ValueError naming the first bad entry."""
        exact: set[str] = set()
        domains: set[str] = set()
        for raw in entries:
            entry = raw.strip()
            name = entry.removeprefix("*.")
            if not HOST_NAME.fullmatch(name) or len(name) > 253:
                raise ValueError(f"allowed host {raw!r} is not a lowercase host name or *.domain")
            (domains if entry.startswith("*.") else exact).add(name)
        if not exact and not domains:
            raise ValueError("the allowed host list is empty")
        return cls(frozenset(exact), frozenset(domains))

    def allows(self, host: str) -> bool:
        return host in self.exact or any(host.endswith("." + domain) for domain in self.domains)

    def __str__(self) -> str:
        return ", ".join(sorted(self.exact) + sorted(f"*.{domain}" for domain in self.domains))


DEFAULT_HOSTS = AllowedHosts.parse(DEFAULT_ALLOWED_HOSTS)
