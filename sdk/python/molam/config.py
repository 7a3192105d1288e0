"""What MolamClient accepts. A bad option raises ConfigurationError at construction, naming the
option and the reason, rather than turning into a 401 on the first call or into self-healing
that silently never heals. The Node SDK checks the same things in the same order, with the
same reasons (tests/vectors/configuration.json).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from molam.errors import ConfigurationError

MAX_CREDENTIAL_LENGTH = 1024
_VISIBLE_ASCII = re.compile(r"[\x21-\x7e]+")
_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")


def credential(option: str, value: object) -> str:
    """An API key, secret key or token: visible ASCII (it travels in a header or keys an HMAC)."""
    if value is None or value == "":
        raise ConfigurationError("is not set or empty", option=option)
    if not isinstance(value, str):
        raise ConfigurationError("must be a string", option=option)
    if len(value) > MAX_CREDENTIAL_LENGTH:
        raise ConfigurationError(f"is longer than {MAX_CREDENTIAL_LENGTH} characters", option=option)
    if not _VISIBLE_ASCII.fullmatch(value):
        if _SPACE_OR_CONTROL.search(value):
            raise ConfigurationError(
                "contains whitespace or a control character (a newline copied from a file?)", option=option
            )
        raise ConfigurationError("contains a non-ASCII character", option=option)
    return value


def http_url(option: str, value: object) -> str:
    parts = urlsplit(value) if isinstance(value, str) else None
    try:
        valid = (
            parts is not None
            and parts.scheme in ("http", "https")
            and bool(parts.hostname)
            and (parts.port is None or parts.port > 0)
        )
    except ValueError:  # a port that is not a number
        valid = False
    if not valid:
        raise ConfigurationError("must be an http:// or https:// URL with a host", option=option)
    return value


@dataclass(frozen=True)
class SelfHealSettings:
    url: str | None  # None: no registry, the bootstrap file's patches only
    token: str | None


def self_heal_settings(
    *,
    token: str | None,
    token_from_environment: bool,
    url: str | None,
    url_from_environment: bool,
    has_trusted_keys: bool,
    bootstrap: object,
) -> SelfHealSettings | None:
    """What self-healing will use, None when nothing of it is configured (it stays off, with a
    warning: the runbook's example), or ConfigurationError when it is half configured."""
    token_option = "MOLAM_SELFHEAL_TOKEN" if token_from_environment else "selfheal_token"
    if not token and not has_trusted_keys and bootstrap is None:
        return None
    if not has_trusted_keys:
        needs = (
            f"self-healing with a {token_option} needs the registry's public key pinned to verify patches"
            if token
            else "bootstrap_envelopes need the registry's public key pinned to verify them"
        )
        raise ConfigurationError(
            f"is empty, but {needs} (`selfheal keygen` prints it); or turn self-healing off", option="trusted_keys"
        )
    if not token:
        if bootstrap is not None:
            return SelfHealSettings(url=None, token=None)
        raise ConfigurationError(
            "is not set (nor MOLAM_SELFHEAL_TOKEN), but self-healing with trusted_keys needs a "
            "developer token of the registry (`selfheal token create`) or bootstrap_envelopes; "
            "or turn self-healing off",
            option="selfheal_token",
        )
    credential(token_option, token)
    http_url("MOLAM_SELFHEAL_URL" if url_from_environment else "selfheal_url", url)
    return SelfHealSettings(url=url, token=token)
