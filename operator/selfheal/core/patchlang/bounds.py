"""What a literal may be, checked while compiling: each check returns the value as it goes into
an operation, or raises PatchCodeError at the literal's position.

Every string that enters an operation first passes `plain_text`: printable, no bidirectional
controls, and nothing that looks like a secret — secrets travel by name, never by value, so a
key pasted into a patch is refused before it reaches a CR, the registry or an audit row.
"""

from __future__ import annotations

import datetime
import math
import re
from collections import Counter
from collections.abc import Callable, Mapping
from decimal import Decimal

from selfheal.core.patchlang.errors import PatchCodeError
from selfheal.core.patchlang.hosts import HOST_NAME, AllowedHosts
from selfheal.core.patchlang.syntax import Value

Json = str | int | bool | None | dict[str, "Json"]
Check = Callable[[Value, AllowedHosts], Json]

MAX_TEXT = 500

# Circulating ISO 4217 currencies; precious metals, fund units and test codes are not money a
# payment can be in.
ISO_4217 = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP
    BYN BZD CAD CDF CHF CLP CNY COP CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP
    GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS
    KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR
    MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF
    SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD
    TZS UAH UGX USD UYU UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG
""".split()
)

# ISO 3166-1 alpha-2: the officially assigned country codes.
ISO_3166 = frozenset(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS
    BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE
    EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM
    HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC
    LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA
    NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW
    SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO
    TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
""".split()
)

_SECRET_SHAPES = (
    (re.compile(r"\b[sprk]k_(?:live|test)_[A-Za-z0-9]{6,}"), "an API key"),
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), "a cloud access key"),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"), "a GitHub token"),
    (re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"), "a Slack token"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\."), "a JSON web token"),
    (re.compile(r"://[^/\s@]*:[^/\s@]*@"), "a URL with a password"),
    (
        re.compile(r"(?i)\b(?:api[_-]?key|secret|passw(?:or)?d|token|bearer)\b\s*[:=]?\s*[A-Za-z0-9+/_=.-]{8,}"),
        "a credential",
    ),
    (re.compile(r"\b[0-9a-fA-F]{32,}\b"), "a hexadecimal key"),
)
_TOKEN = re.compile(r"[A-Za-z0-9+/=_-]{20,}")
# Unicode bidirectional controls reorder what a reviewer sees ("Trojan Source").
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def fail(value: Value, reason: str) -> PatchCodeError:
    return PatchCodeError(value.line, value.column, reason)


def secret_shape(text: str) -> str | None:
    """What `text` looks like if it looks like a secret, else None."""
    for pattern, what in _SECRET_SHAPES:
        if pattern.search(text):
            return what
    for token in _TOKEN.findall(text):
        mixed = any(c.islower() for c in token) + any(c.isupper() for c in token) + any(c.isdigit() for c in token)
        if mixed >= 3 and _entropy(token) >= 3.5:
            return "a random token"
    return None


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def plain_text(value: Value, *, what: str, limit: int = MAX_TEXT) -> str:
    if value.kind != "string":
        raise fail(value, f"{what} must be a string literal, not {_kind(value)}")
    text = value.data
    assert isinstance(text, str)
    if len(text) > limit:
        raise fail(value, f"{what} is longer than {limit} characters")
    if _BIDI.search(text):
        raise fail(value, f"{what} contains a bidirectional control character")
    if any(not ch.isprintable() for ch in text):
        raise fail(value, f"{what} contains a control or invisible character")
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in text):
        raise fail(value, f"{what} contains a lone surrogate")
    secret = secret_shape(text)
    if secret:
        raise fail(value, f"{what} looks like {secret}: secrets travel by name, never in patch code")
    return text


def _kind(value: Value) -> str:
    return {"string": "a string", "number": "a number", "boolean": "a boolean", "null": "null", "mapping": "a mapping"}[
        value.kind
    ]


def _number(value: Value, *, what: str) -> Decimal:
    # Booleans are not numbers here, even where the language says True == 1.
    if value.kind != "number":
        raise fail(value, f"{what} must be a number, not {_kind(value)}")
    assert isinstance(value.data, Decimal)
    return value.data


def integer(low: int, high: int, *, what: str) -> Check:
    def check(value: Value, hosts: AllowedHosts) -> int:
        number = _number(value, what=what)
        if number != number.to_integral_value():
            raise fail(value, f"{what} must be a whole number")
        if not low <= number <= high:
            raise fail(value, f"{what} must be between {low} and {high}")
        return int(number)

    return check


def duration_ms(low_ms: int, high_ms: int, *, what: str, written_in: str) -> Check:
    """A duration written in seconds or milliseconds; the operation always holds milliseconds."""
    scale = {"s": Decimal(1000), "ms": Decimal(1)}[written_in]

    def check(value: Value, hosts: AllowedHosts) -> int:
        ms = _number(value, what=what) * scale
        if ms != ms.to_integral_value():
            raise fail(value, f"{what} must be a whole number of milliseconds")
        if not low_ms <= ms <= high_ms:
            raise fail(
                value,
                f"{what} must be between {Decimal(low_ms) / scale:f} and {Decimal(high_ms) / scale:f} {written_in}",
            )
        return int(ms)

    return check


def boolean(*, what: str) -> Check:
    def check(value: Value, hosts: AllowedHosts) -> bool:
        if value.kind != "boolean":
            raise fail(value, f"{what} must be true or false, not {_kind(value)}")
        return bool(value.data)

    return check


_URL = re.compile(r"https://(?P<host>[^/:?#@\\\s]+)(?::(?P<port>[1-9][0-9]{0,4}))?(?P<path>/[A-Za-z0-9._~/-]*)?")


def https_url(*, what: str) -> Check:
    """`https://host[:port][/path]`, host on the allow-list; no user info, query or fragment."""

    def check(value: Value, hosts: AllowedHosts) -> str:
        if value.kind == "string" and "@" in str(value.data):
            raise fail(value, f"{what} must be https://host[:port][/path] with no user, query or fragment")
        url = plain_text(value, what=what)
        if not url.startswith("https://"):
            raise fail(value, f"{what} must be an https:// URL")
        match = _URL.fullmatch(url)
        if match is None:
            raise fail(value, f"{what} must be https://host[:port][/path] with no user, query or fragment")
        host = match["host"]
        if not host.isascii():
            raise fail(value, f"{what} host {host!r} is not ASCII (look-alike characters are refused)")
        if not HOST_NAME.fullmatch(host):
            raise fail(value, f"{what} host {host!r} must be a lowercase host name")
        if not hosts.allows(host):
            raise fail(value, f"{what} host {host} is not on the allowed host list ({hosts})")
        if match["port"] is not None and not 1 <= int(match["port"]) <= 65535:
            raise fail(value, f"{what} port is out of range")
        if "//" in (match["path"] or "") or "/../" in (match["path"] or "") + "/":
            raise fail(value, f"{what} path must not contain // or ..")
        return url

    return check


def currency(*, what: str, nullable: bool) -> Check:
    def check(value: Value, hosts: AllowedHosts) -> str | None:
        if nullable and value.kind == "null":
            return None
        code = plain_text(value, what=what)
        if code not in ISO_4217:
            raise fail(value, f"{what} {code!r} is not an ISO 4217 currency code")
        return code

    return check


def country(*, what: str) -> Check:
    def check(value: Value, hosts: AllowedHosts) -> str:
        code = plain_text(value, what=what)
        if code not in ISO_3166:
            raise fail(value, f"{what} {code!r} is not an ISO 3166-1 alpha-2 country code")
        return code

    return check


_API_VERSION = re.compile(r"v[1-9][0-9]{0,2}|(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})")


def api_version(*, what: str) -> Check:
    def check(value: Value, hosts: AllowedHosts) -> str:
        text = plain_text(value, what=what)
        match = _API_VERSION.fullmatch(text)
        if match is None:
            raise fail(value, f"{what} must look like v2 or 2024-01-31")
        if match["date"]:
            try:
                datetime.date.fromisoformat(text)
            except ValueError:
                raise fail(value, f"{what} {text!r} is not a calendar date") from None
        return text

    return check


_CREDENTIAL_NAME = re.compile(r"[A-Z][A-Z0-9_]{2,63}")
# The fallback credential rule, also both SDKs' default: a patch names only the application's own
# Molam credentials, never what the SDK holds for itself, nor any other secret of the process
# (AWS_SECRET_ACCESS_KEY, NPM_TOKEN…), which the SDK would otherwise send as its API key.
CREDENTIAL_PREFIX = "MOLAM_"
RESERVED_CREDENTIAL_PREFIX = "MOLAM_SELFHEAL_"  # the SDK's own settings: its registry token and URL
RESERVED_CREDENTIALS = frozenset({"MOLAM_SECRET_KEY"})  # the signing secret never travels in a header
CREDENTIAL_RULE = (
    "names start with MOLAM_, never MOLAM_SELFHEAL_* (the SDK's own token and URL) "
    "nor MOLAM_SECRET_KEY (the request signing secret)"
)


def credential_rule_allows(name: str) -> bool:
    return (
        name.startswith(CREDENTIAL_PREFIX)
        and len(name) > len(CREDENTIAL_PREFIX)
        and not name.startswith(RESERVED_CREDENTIAL_PREFIX)
        and name not in RESERVED_CREDENTIALS
    )


def credential_name(*, what: str) -> Check:
    """The name of a credential the SDK already holds (e.g. an environment variable), never its value."""

    def check(value: Value, hosts: AllowedHosts) -> str:
        name = plain_text(value, what=what)
        if not _CREDENTIAL_NAME.fullmatch(name):
            raise fail(
                value,
                f"{what} must be a credential name such as MOLAM_FALLBACK_API_KEY "
                "(capitals, digits, _), never the credential itself",
            )
        if not credential_rule_allows(name):
            raise fail(value, f"{what} {name} is outside the fallback credential rule: {CREDENTIAL_RULE}")
        return name

    return check


def field_defaults(fields: Mapping[str, Check], *, what: str) -> Check:
    """Defaults for missing request fields: only the fields of `fields`, each value checked by its own type."""

    def check(value: Value, hosts: AllowedHosts) -> dict[str, Json]:
        if value.kind != "mapping":
            raise fail(value, f"{what} must be a mapping of field names to default values")
        assert isinstance(value.data, tuple)
        if not value.data:
            raise fail(value, f"{what} must name at least one field")
        filled: dict[str, Json] = {}
        for entry in value.data:
            if entry.key not in fields:
                raise PatchCodeError(
                    entry.line,
                    entry.column,
                    f"field {entry.key!r} is not one a patch may fill (only: {', '.join(fields)})",
                )
            if entry.key in filled:
                raise PatchCodeError(entry.line, entry.column, f"field {entry.key!r} is given twice")
            filled[entry.key] = fields[entry.key](entry.value, hosts)
        return filled

    return check
