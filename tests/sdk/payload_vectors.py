"""tests/vectors/payloads.json: the signed payload's grammar and the envelope's times, as both SDKs
must read them (molam/payload.py, sdk/node/src/payload.js; issue 14, points 4 and 6).

Every case is an envelope whose payload bytes a trusted key signed, so only the reading of the
bytes decides: the signature is valid in each. Hostile cases come from what one SDK or the other
read differently before (UTF-16, NaN, ISO week dates and 7 fraction digits in Python; `30000.0`,
`3e4` and integers above 2^53 in Node), from what JSON parsers disagree on (duplicate members,
lone surrogates, deep nesting), and from envelopes the registry never issues (issued in the
future, a lifetime above 24 h). `expect.reason` is a part of the refusal both SDKs give.
Written by `python -m tests.sdk.vectors`; the expectations are written here by hand.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

from tests.sdk.sealing import CURRENT, TRUSTED

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PATCH_ID = "python-grammar"
MAX_SAFE = 2**53 - 1


def stamp(moment: datetime) -> str:
    """As the registry writes times (`isoformat(timespec="seconds")` of a UTC time)."""
    return moment.isoformat(timespec="seconds")


def micros(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


ISSUED, EXPIRES = NOW - timedelta(minutes=2), NOW + timedelta(minutes=3)


def payload(**changes: object) -> dict:
    document = {
        "patch_id": PATCH_ID,
        "version": "1.2.0",
        "sequence": 42,
        "sdk_language": "python",
        "error_signature": "Timeout",
        "description": "Délai relevé",
        "severity": "medium",
        "operations": {
            "format": "selfheal.operations",
            "version": 1,
            "operations": [
                {"op": "set", "setting": "timeout_ms", "value": 30000},
                {"level": "warning", "message": "timeout raised", "op": "log"},
            ],
        },
        "rollback_operations": None,
        "issued_at": stamp(ISSUED),
        "expires_at": stamp(EXPIRES),
    }
    return {**document, **changes}


def canonical(document: object) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


BASE = canonical(payload())


def edit(old: bytes, new: bytes, data: bytes = BASE) -> bytes:
    """The base payload's bytes with one part replaced (the part must be there, once)."""
    assert data.count(old) == 1, old
    return data.replace(old, new)


def envelope(data: bytes) -> dict:
    return {
        "format": "selfheal.patch.v1",
        "payload": base64.b64encode(data).decode("ascii"),
        "signatures": [CURRENT.signature(data)],
    }


def accepted(
    *,
    sequence: int = 42,
    description: str = "Délai relevé",
    issued: datetime = ISSUED,
    expires: datetime = EXPIRES,
) -> dict:
    return {
        "accepted": True,
        "patch_id": PATCH_ID,
        "version": "1.2.0",
        "sequence": sequence,
        "description": description,
        "issued_at_us": micros(issued),
        "expires_at_us": micros(expires),
    }


def refused(reason: str) -> dict:
    return {"accepted": False, "reason": reason}


NOT_UTF8 = refused("payload: is not UTF-8 text")
FRACTION = "has a fraction or an exponent: only integers are allowed"
NOT_JSON_NUMBER = refused("NaN and Infinity are not JSON")
NOT_TIME = "is not an RFC 3339 UTC time"
BAD_TIME = "is not a valid date and time"
LONE = "has a lone surrogate escape in a string"


def _times(issued: datetime | str, expires: datetime | str) -> bytes:
    def text(moment: datetime | str) -> str:
        return moment if isinstance(moment, str) else stamp(moment)

    return canonical(payload(issued_at=text(issued), expires_at=text(expires)))


def _expires(text: str) -> bytes:
    return _times(ISSUED, text)


def _nested(levels: int) -> bytes:
    """An extra member holding `levels` nested arrays, so the payload nests `levels + 1` deep."""
    return edit(b'"description"', b'"deep":' + b"[" * levels + b"]" * levels + b',"description"')


def _encoding_cases() -> list[tuple]:
    text = BASE.decode("utf-8")
    ascii_text = canonical(payload(description="Delai releve")).decode("ascii")  # UTF-16 of it: valid UTF-8
    description = '"description":"Délai relevé"'.encode()

    def in_description(raw: bytes) -> bytes:
        return edit(description, b'"description":"D' + raw + b'lai"')

    return [
        ("utf16_le_with_bom", "UTF-16 (LE, with BOM): Python read it", text.encode("utf-16"), NOT_UTF8),
        (
            "utf16_be_without_bom",
            "UTF-16 BE without BOM: valid UTF-8 bytes, NUL first",
            ascii_text.encode("utf-16-be"),
            refused("payload: is not a JSON value"),
        ),
        (
            "utf16_le_without_bom",
            "UTF-16 LE without BOM: NUL after the brace",
            ascii_text.encode("utf-16-le"),
            refused("payload: expects a member name in double quotes"),
        ),
        ("utf32_with_bom", "UTF-32: Python read it", text.encode("utf-32"), NOT_UTF8),
        (
            "utf8_with_bom",
            "a UTF-8 byte order mark: both read past it",
            b"\xef\xbb\xbf" + BASE,
            refused("payload: starts with a byte order mark"),
        ),
        ("invalid_byte", "0xFF in a string", in_description(b"\xff"), NOT_UTF8),
        ("latin1_byte", "é as Latin-1 (0xE9)", in_description(b"\xe9"), NOT_UTF8),
        ("overlong_slash", "an overlong form of '/' (C0 AF)", in_description(b"\xc0\xaf"), NOT_UTF8),
        (
            "encoded_surrogate",
            "a surrogate encoded in UTF-8 (ED A0 80): Python's json.loads(bytes) read it",
            in_description(b"\xed\xa0\x80"),
            NOT_UTF8,
        ),
        ("truncated_sequence", "a 3-byte sequence cut after 2 bytes", in_description(b"\xe2\x82"), NOT_UTF8),
        ("above_unicode", "a code point above U+10FFFF (F4 90 80 80)", in_description(b"\xf4\x90\x80\x80"), NOT_UTF8),
        (
            "raw_tab_in_string",
            "an unescaped tab inside a string",
            in_description(b"\t"),
            refused("description: has a control character in a string"),
        ),
        (
            "raw_nul_in_string",
            "an unescaped NUL inside a string",
            in_description(b"\x00"),
            refused("description: has a control character in a string"),
        ),
    ]


def _number_cases() -> list[tuple]:
    timeout = b'"value":30000'
    path = "operations.operations[0].value"
    return [
        (
            "nan_sequence",
            "NaN as the sequence: Python read it",
            edit(b'"sequence":42', b'"sequence":NaN'),
            NOT_JSON_NUMBER,
        ),
        ("infinity_value", "Infinity in an operation", edit(timeout, b'"value":Infinity'), NOT_JSON_NUMBER),
        ("minus_infinity_value", "-Infinity in an operation", edit(timeout, b'"value":-Infinity'), NOT_JSON_NUMBER),
        (
            "sequence_with_fraction",
            "42.0: Node read an integer",
            edit(b'"sequence":42', b'"sequence":42.0'),
            refused(f"sequence: number 42.0 {FRACTION}"),
        ),
        (
            "sequence_with_exponent",
            "4.2e1: Node read an integer",
            edit(b'"sequence":42', b'"sequence":4.2e1'),
            refused(f"sequence: number 4.2e1 {FRACTION}"),
        ),
        ("sequence_e0", "42e0", edit(b'"sequence":42', b'"sequence":42e0'), refused(FRACTION)),
        ("sequence_upper_e_plus", "42E+0", edit(b'"sequence":42', b'"sequence":42E+0'), refused(FRACTION)),
        (
            "timeout_with_fraction",
            "30000.0 where the operation expects an integer: Node read 30000",
            edit(timeout, b'"value":30000.0'),
            refused(f"{path}: number 30000.0 {FRACTION}"),
        ),
        (
            "timeout_with_exponent",
            "3e4 where the operation expects an integer: Node read 30000",
            edit(timeout, b'"value":3e4'),
            refused(f"{path}: number 3e4 {FRACTION}"),
        ),
        ("overflowing_exponent", "1e999: infinity in both", edit(timeout, b'"value":1e999'), refused(FRACTION)),
        (
            "sequence_2_53_plus_1",
            "2^53+1: Node read 2^53",
            edit(b'"sequence":42', b'"sequence":9007199254740993'),
            refused("sequence: integer 9007199254740993 is outside ±(2^53-1)"),
        ),
        (
            "sequence_2_53",
            "2^53: the first integer both cannot tell from its neighbour",
            edit(b'"sequence":42', b'"sequence":9007199254740992'),
            refused("integer 9007199254740992 is outside ±(2^53-1)"),
        ),
        (
            "value_minus_2_53",
            "-2^53 in an operation",
            edit(timeout, b'"value":-9007199254740992'),
            refused(f"{path}: integer -9007199254740992 is outside"),
        ),
        (
            "integer_of_400_digits",
            "an integer of 400 digits (Python refuses to convert beyond 4300)",
            edit(timeout, b'"value":' + b"9" * 400),
            refused(f"{path}: integer 9999"),
        ),
        (
            "minus_zero",
            "-0: JavaScript keeps the sign",
            edit(timeout, b'"value":-0'),
            refused("number -0 is not allowed"),
        ),
        ("leading_zero", "042", edit(b'"sequence":42', b'"sequence":042'), refused("payload: expects ',' or '}'")),
        ("plus_sign", "+42", edit(b'"sequence":42', b'"sequence":+42'), refused("sequence: is not a JSON value")),
        ("hexadecimal", "0x2A", edit(b'"sequence":42', b'"sequence":0x2A'), refused("payload: expects ',' or '}'")),
        ("bare_fraction", ".5", edit(timeout, b'"value":.5'), refused(f"{path}: is not a JSON value")),
        (
            "sequence_as_string",
            '"42"',
            edit(b'"sequence":42', b'"sequence":"42"'),
            refused("sequence: must be an integer from 0 to 2^53-1"),
        ),
        (
            "sequence_true",
            "true (an integer in Python)",
            edit(b'"sequence":42', b'"sequence":true'),
            refused("sequence: must be an integer from 0 to 2^53-1"),
        ),
        (
            "sequence_negative",
            "-1",
            edit(b'"sequence":42', b'"sequence":-1'),
            refused("sequence: must be an integer from 0 to 2^53-1"),
        ),
    ]


def _structure_cases() -> list[tuple]:
    return [
        (
            "duplicate_patch_id",
            "the patch id twice: each parser keeps the last, other readers the first",
            edit(b'"patch_id":"python-grammar"', b'"patch_id":"python-grammar","patch_id":"python-other"'),
            refused('payload: names the member "patch_id" twice'),
        ),
        (
            "duplicate_sequence",
            "the sequence twice (43, then 41)",
            edit(b'"sequence":42', b'"sequence":43,"sequence":41'),
            refused('names the member "sequence" twice'),
        ),
        (
            "duplicate_through_escape",
            "sequence, then \\u0073equence",
            edit(b'"sequence":42', b'"sequence":42,"\\u0073equence":41'),
            refused('names the member "sequence" twice'),
        ),
        (
            "duplicate_in_an_operation",
            "an operation's value twice",
            edit(b'"value":30000', b'"value":30000,"value":100'),
            refused('operations.operations[0]: names the member "value" twice'),
        ),
        (
            "lone_high_surrogate",
            "\\ud800 alone",
            edit(b'"Timeout"', b'"Time\\ud800out"'),
            refused(f"error_signature: {LONE}"),
        ),
        ("lone_low_surrogate", "\\udc00 alone", edit(b'"Timeout"', b'"Time\\udc00out"'), refused(LONE)),
        (
            "high_surrogate_then_letter",
            "\\ud800\\u0041",
            edit(b'"Timeout"', b'"Time\\ud800\\u0041out"'),
            refused(LONE),
        ),
        (
            "surrogate_pair_escape",
            "a valid pair escaped: one character",
            edit(b'"D\xc3\xa9lai relev\xc3\xa9"', b'"D\\u00e9lai \\ud83d\\ude00"'),
            accepted(description="Délai 😀"),
        ),
        (
            "nested_32_levels",
            "32 levels deep: the limit",
            _nested(31),
            accepted(),
        ),
        ("nested_33_levels", "33 levels deep", _nested(32), refused("nests deeper than 32 levels")),
        (
            "nested_10000_levels",
            "10,000 levels: Python's parser raised RecursionError",
            _nested(10_000),
            refused("nests deeper than 32 levels"),
        ),
        (
            "trailing_comma_object",
            "a comma before the closing brace",
            BASE[:-1] + b",}",
            refused("payload: expects a member name in double quotes"),
        ),
        (
            "trailing_comma_array",
            "a comma before the closing bracket",
            edit(b'"op":"log"}]', b'"op":"log"},]'),
            refused("operations.operations[2]: is not a JSON value"),
        ),
        ("comment", "a comment before the value", b"/* x */" + BASE, refused("payload: is not a JSON value")),
        (
            "single_quotes",
            "a string in single quotes",
            edit(b'"severity":"medium"', b"\"severity\":'medium'"),
            refused("severity: is not a JSON value"),
        ),
        ("second_value", "a second JSON value after the first", BASE + b"{}", refused("has data after the JSON value")),
        ("second_value_after_space", "a second value after whitespace", BASE + b" 1", refused("has data after")),
        ("empty", "no bytes at all", b"", refused("payload: ends before a value")),
        ("whitespace_only", "whitespace only", b" \n\t", refused("payload: ends before a value")),
        ("invalid_escape", "\\x41", edit(b'"Timeout"', b'"\\x41"'), refused("has an invalid escape in a string")),
        ("short_unicode_escape", "\\u12", edit(b'"Timeout"', b'"\\u12"'), refused("has an invalid escape")),
        ("unterminated_string", "the last string never ends", BASE[:-2], refused("has a string that does not end")),
        ("name_not_a_string", "a member name that is a number", b"{1:2}", refused("expects a member name")),
        ("top_level_string", "a JSON string, not an object", b'"patch"', refused("payload: is not an object")),
        ("top_level_null", "null", b"null", refused("payload: is not an object")),
        (
            "pretty_printed",
            "whitespace between tokens, as JSON allows: accepted",
            json.dumps(payload(), indent=2, ensure_ascii=False).encode("utf-8") + b"\n",
            accepted(),
        ),
        (
            "missing_issued_at",
            "no issued_at",
            canonical({key: value for key, value in payload().items() if key != "issued_at"}),
            refused("issued_at: must be a time string"),
        ),
        (
            "version_with_arabic_digit",
            "١.2.0: Python's \\d matched it",
            edit(b'"version":"1.2.0"', '"version":"١.2.0"'.encode()),
            refused("is not a semantic version"),
        ),
        (
            "version_too_long",
            "a version of 65 characters",
            edit(b'"version":"1.2.0"', b'"version":"1.2.0-' + b"a" * 59 + b'"'),
            refused("is not a semantic version of at most 64 characters"),
        ),
        (
            "version_empty_identifier",
            "1.2.0-a..b: not the registry's pattern",
            edit(b'"version":"1.2.0"', b'"version":"1.2.0-a..b"'),
            refused("is not a semantic version"),
        ),
    ]


def _time_grammar_cases() -> list[tuple]:
    def expires_form(name: str, description: str, text: str, reason: str) -> tuple:
        return (
            name,
            description,
            _expires(text),
            refused(f"expires_at: {json.dumps(text, ensure_ascii=False)} {reason}"),
        )

    return [
        expires_form("iso_week_date", "an ISO week date: Python read it", "2026-W09-7T12:03:00+00:00", NOT_TIME),
        expires_form(
            "seven_fraction_digits", "7 fraction digits: Python read it", "2026-03-01T12:03:00.1234567+00:00", NOT_TIME
        ),
        expires_form("space_separator", "a space instead of T", "2026-03-01 12:03:00+00:00", NOT_TIME),
        expires_form("lower_case_t", "a lower-case t", "2026-03-01t12:03:00+00:00", NOT_TIME),
        expires_form("lower_case_z", "a lower-case z", "2026-03-01T12:03:00z", NOT_TIME),
        expires_form("other_offset", "+01:00, even for the same instant", "2026-03-01T13:03:00+01:00", NOT_TIME),
        expires_form("unknown_offset", "-00:00 (RFC 3339: offset unknown)", "2026-03-01T12:03:00-00:00", NOT_TIME),
        expires_form("no_offset", "no offset at all", "2026-03-01T12:03:00", NOT_TIME),
        expires_form("basic_format", "ISO 8601 basic format", "20260301T120300Z", NOT_TIME),
        expires_form("no_seconds", "no seconds: Node read it", "2026-03-01T12:03+00:00", NOT_TIME),
        expires_form("ordinal_date", "an ordinal date", "2026-060T12:03:00+00:00", NOT_TIME),
        expires_form("comma_fraction", "a comma before the fraction", "2026-03-01T12:03:00,5+00:00", NOT_TIME),
        expires_form("offset_with_seconds", "an offset with seconds", "2026-03-01T12:03:00+00:00:00", NOT_TIME),
        expires_form("empty_fraction", "a point without digits", "2026-03-01T12:03:00.+00:00", NOT_TIME),
        expires_form("arabic_digits", "Arabic-Indic digits in the year", "٢٠٢٦-03-01T12:03:00+00:00", NOT_TIME),
        expires_form("trailing_newline", "a newline after the offset", "2026-03-01T12:03:00+00:00\n", NOT_TIME),
        expires_form("leap_second", "second 60", "2026-03-01T23:59:60+00:00", BAD_TIME),
        expires_form("february_30", "February 30", "2026-02-30T12:03:00+00:00", BAD_TIME),
        expires_form("february_29_common_year", "February 29 of 2026", "2026-02-29T12:03:00+00:00", BAD_TIME),
        expires_form("hour_24", "24:00:00", "2026-03-01T24:00:00+00:00", BAD_TIME),
        expires_form("month_13", "month 13", "2026-13-01T12:03:00+00:00", BAD_TIME),
        expires_form("year_0", "year 0000", "0000-03-01T12:03:00+00:00", BAD_TIME),
        (
            "time_as_number",
            "seconds since the epoch",
            canonical(payload(expires_at=int(EXPIRES.timestamp()))),
            refused("expires_at: must be a time string"),
        ),
        (
            "z_and_six_fraction_digits",
            "Z, and 6 fraction digits: accepted",
            _times("2026-03-01T11:58:00.000001Z", "2026-03-01T12:03:00.999999Z"),
            accepted(issued=ISSUED + timedelta(microseconds=1), expires=EXPIRES + timedelta(microseconds=999_999)),
        ),
    ]


def _lifetime_cases() -> list[tuple]:
    skew, day, tick = timedelta(seconds=300), timedelta(hours=24), timedelta(microseconds=1)

    def fraction(moment: datetime) -> str:
        return moment.isoformat(timespec="microseconds")

    return [
        (
            "issued_beyond_the_skew",
            "issued 301 s ahead of the SDK's clock",
            _times(NOW + timedelta(seconds=301), NOW + timedelta(seconds=601)),
            refused("is more than 300 s ahead of this clock"),
        ),
        (
            "issued_at_the_skew",
            "issued exactly 300 s ahead: accepted",
            _times(NOW + skew, NOW + 2 * skew),
            accepted(issued=NOW + skew, expires=NOW + 2 * skew),
        ),
        (
            "issued_a_microsecond_beyond_the_skew",
            "issued 300 s and 1 µs ahead",
            _times(fraction(NOW + skew + tick), NOW + 2 * skew),
            refused("ahead of this clock"),
        ),
        (
            "issued_in_year_9999",
            "issued and expiring in the last hour of year 9999",
            _times("9999-12-31T23:00:00+00:00", "9999-12-31T23:59:59+00:00"),
            refused("ahead of this clock"),
        ),
        (
            "lifetime_above_24_hours",
            "24 h and 1 s",
            _times(ISSUED, ISSUED + day + timedelta(seconds=1)),
            refused("lifetime of 86401 s is above the 86400 s maximum"),
        ),
        (
            "lifetime_a_microsecond_above_24_hours",
            "24 h and 1 µs",
            _times(ISSUED, fraction(ISSUED + day + tick)),
            refused("lifetime of 86400.000001 s is above the 86400 s maximum"),
        ),
        (
            "lifetime_of_24_hours",
            "exactly 24 h: accepted",
            _times(ISSUED, ISSUED + day),
            accepted(expires=ISSUED + day),
        ),
        (
            "lifetime_of_ten_years",
            "a bootstrap file meant to last ten years",
            _times(ISSUED, ISSUED + timedelta(days=3653)),
            refused("above the 86400 s maximum"),
        ),
        (
            "zero_lifetime",
            "expires_at equal to issued_at",
            _times(NOW + timedelta(seconds=60), NOW + timedelta(seconds=60)),
            refused("expires_at is not after its issued_at"),
        ),
        (
            "expires_before_issued",
            "expires_at before issued_at",
            _times(NOW + timedelta(seconds=120), NOW + timedelta(seconds=60)),
            refused("expires_at is not after its issued_at"),
        ),
        (
            "expires_now",
            "expires_at equal to now",
            _times(ISSUED, NOW),
            refused("envelope expired at 2026-03-01T12:00:00+00:00"),
        ),
        (
            "expires_a_microsecond_after_now",
            "expires 1 µs after now: accepted",
            _times(ISSUED, fraction(NOW + tick)),
            accepted(expires=NOW + tick),
        ),
        (
            "expired_ten_days_ago",
            "expired ten days ago",
            _times(NOW - timedelta(days=10, minutes=5), NOW - timedelta(days=10)),
            refused("envelope expired at 2026-02-19T12:00:00+00:00"),
        ),
    ]


ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _unused_bit_set(text: str) -> str:
    """The same bytes in another base64 text: the last character before the padding carries bits
    no byte uses; set the lowest. Lenient decoders read both texts alike."""
    body = text.rstrip("=")
    loose = body[:-1] + ALPHABET[ALPHABET.index(body[-1]) | 1] + text[len(body) :]
    assert loose != text and base64.b64decode(loose) == base64.b64decode(text)
    return loose


def _encoding_of_the_envelope_cases() -> list[tuple]:
    """Base64 as the registry writes it only: canonical (RFC 4648), padded, nothing else."""
    sealed = envelope(canonical(payload(description="Délai relevé !")))  # base64 with padding
    text, signature = sealed["payload"], sealed["signatures"][0]
    other = envelope(canonical(payload(description="Délai relevé ???")))  # its base64 has a "/"
    url = other["payload"].replace("+", "-").replace("/", "_")
    assert url != other["payload"]
    not_base64 = refused("envelope payload is not valid base64")
    return [
        ("payload_base64_unused_bits", "unused bits set", {**sealed, "payload": _unused_bit_set(text)}, not_base64),
        (
            "payload_base64_newlines",
            "MIME line breaks",
            {**sealed, "payload": text[:76] + "\n" + text[76:]},
            not_base64,
        ),
        ("payload_base64_unpadded", "no padding", {**sealed, "payload": text.rstrip("=")}, not_base64),
        ("payload_base64_url_alphabet", "the base64url alphabet", {**other, "payload": url}, not_base64),
        ("payload_base64_trailing_space", "a space after the padding", {**sealed, "payload": text + " "}, not_base64),
        (
            "signature_base64_unused_bits",
            "the signature's text with unused bits set",
            {**sealed, "signatures": [{**signature, "signature": _unused_bit_set(signature["signature"])}]},
            refused("no valid signature from a trusted key"),
        ),
    ]


def payloads() -> dict:
    cases = []
    for name, description, data, expect in (
        _encoding_cases() + _number_cases() + _structure_cases() + _time_grammar_cases() + _lifetime_cases()
    ):
        cases.append(
            {"name": name, "description": description, "seen": {}, "envelope": envelope(data), "expect": expect}
        )
    for name, description, sealed, expect in _encoding_of_the_envelope_cases():
        cases.append({"name": name, "description": description, "seen": {}, "envelope": sealed, "expect": expect})
    cases.append(
        {
            "name": "replayed_sequence_above_2_53",
            "description": "sequence 2^53+1 after 2^53 was seen: Node read the same sequence and took it",
            "seen": {PATCH_ID: {"version": "1.2.0", "sequence": 2**53}},
            "envelope": envelope(edit(b'"sequence":42', b'"sequence":9007199254740993')),
            "expect": refused("outside ±(2^53-1)"),
        }
    )
    cases.append(
        {
            "name": "sequence_max_safe_integer",
            "description": "sequence 2^53-1: the largest accepted",
            "seen": {},
            "envelope": envelope(edit(b'"sequence":42', f'"sequence":{MAX_SAFE}'.encode())),
            "expect": accepted(sequence=MAX_SAFE),
        }
    )
    names = [case["name"] for case in cases]
    assert len(names) == len(set(names)), "case names are unique"
    return {
        "description": "The signed payload's grammar and the envelope's times, read alike by both SDKs. Open each "
        "`envelope` as a Python patch with `trusted` at `now` (the replay floor `seen`); `expect`: accepted with "
        "these values (times in microseconds since the epoch), or refused with `reason` in the message.",
        "trusted": TRUSTED,
        "now": stamp(NOW),
        "cases": cases,
    }
