"""What MolamClient accepts. A bad option raises ConfigurationError at construction, naming the
option and the reason, rather than turning into a 401 on the first call or into self-healing
that silently never heals. The Node SDK checks the same things in the same order, with the
same reasons (tests/vectors/configuration.json).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
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


# --- Fallback credentials: the names a patch may switch the API key to -------------------------

CREDENTIAL_NAME = re.compile(r"[A-Z][A-Z0-9_]{2,63}")
_PREFIX = re.compile(r"[A-Z][A-Z0-9_]{1,62}\*")
DEFAULT_CREDENTIAL_PREFIX = "MOLAM_"  # the registry compiler's rule too (selfheal.core.patchlang.bounds)
# Never a fallback credential, whatever the configuration: the SDK's own settings (its registry
# token and URL, the proxy variables it reads) and the request signing secret. Sent as the API
# key they would leave the process in an Authorization header.
RESERVED_CREDENTIAL_PREFIX = "MOLAM_SELFHEAL_"
RESERVED_CREDENTIALS = frozenset({"MOLAM_SECRET_KEY", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "REQUEST_METHOD"})


def reserved_credential(name: str) -> bool:
    return name.startswith(RESERVED_CREDENTIAL_PREFIX) or name in RESERVED_CREDENTIALS


@dataclass(frozen=True)
class FallbackCredentials:
    """Which names `use_fallback_credential` may use, and where their values come from."""

    names: frozenset[str]
    prefixes: tuple[str, ...]
    values: Mapping[str, str] | None  # None: environment variables

    def allows(self, name: str) -> bool:
        if reserved_credential(name):
            return False
        return name in self.names or any(name.startswith(prefix) and name != prefix for prefix in self.prefixes)

    def describe(self) -> str:
        if self is DEFAULT_FALLBACK_CREDENTIALS:
            return "names starting MOLAM_, except MOLAM_SELFHEAL_* and MOLAM_SECRET_KEY"
        if not self.names and not self.prefixes:
            return "none"
        return "fallback credentials: " + ", ".join(
            sorted(self.names) + sorted(f"{prefix}*" for prefix in self.prefixes)
        )


DEFAULT_FALLBACK_CREDENTIALS = FallbackCredentials(frozenset(), (DEFAULT_CREDENTIAL_PREFIX,), None)


def fallback_credentials(option: str, value: object) -> FallbackCredentials:
    """None: environment variables named MOLAM_… (none of the reserved ones). A mapping: exactly
    these names, with these values. A list, tuple or set: environment variables of these names,
    or starting with an entry's prefix written `PREFIX_*`. Empty: no patch may switch credentials."""
    if value is None:
        return DEFAULT_FALLBACK_CREDENTIALS
    values = None
    if isinstance(value, Mapping):
        values = dict(value)
    elif not isinstance(value, (list, tuple, set, frozenset)):
        raise ConfigurationError(
            "must map credential names to API keys, or list names (NAME or PREFIX_*) read from the environment",
            option=option,
        )
    names: set[str] = set()
    prefixes: list[str] = []
    for entry in value:
        if not isinstance(entry, str):
            raise ConfigurationError("credential names must be strings", option=option)
        if values is None and _PREFIX.fullmatch(entry):
            if entry.startswith(RESERVED_CREDENTIAL_PREFIX):
                raise ConfigurationError(f"{entry} covers only the SDK's own settings", option=option)
            prefixes.append(entry[:-1])
            continue
        if not CREDENTIAL_NAME.fullmatch(entry):
            raise ConfigurationError(
                f"{json.dumps(entry[:80], ensure_ascii=False)} is not a credential name (capitals, digits and _, such as "
                f"MOLAM_FALLBACK_API_KEY{'' if values is not None else '; or a prefix such as MOLAM_FALLBACK_*'})",
                option=option,
            )
        if reserved_credential(entry):
            raise ConfigurationError(
                f"{entry} is the SDK's own setting or signing secret, never a fallback credential", option=option
            )
        if values is not None:
            credential(f"{option}[{entry}]", values[entry])
        names.add(entry)
    return FallbackCredentials(frozenset(names), tuple(prefixes), values)
