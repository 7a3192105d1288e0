"""Hostile patch code aimed at what a patch may reach, each with the compiler's exact refusal.

Issue 14, point 3: characters that show differently from what the parser reads (comments and
strings included), credential names outside the fallback credential rule, request fields outside
the fixed fillable set or of the wrong type, and hosts that only look allowed. Every case is
(language, code, "line:column: reason"), the whole message compared. Invisible characters are
written as escapes here, so that this file shows what it holds.
"""

from __future__ import annotations

import pytest

from selfheal.core.patchlang import PatchCodeError, compile_patch

BACKUP = "https://api-backup.molam.com"
BIDI = "is a bidirectional control character (it reorders what a reviewer sees)"
INVISIBLE = "is an invisible character"
CONTROL = "is a control character"
LINE_BREAK = "is a line or paragraph separator (a line break only to the parser)"
LONE_CR = "is a lone carriage return (a line break only to the parser)"
RULE = (
    "is outside the fallback credential rule: names start with MOLAM_, never MOLAM_SELFHEAL_* "
    "(the SDK's own token and URL) nor MOLAM_SECRET_KEY (the request signing secret)"
)
NOT_FILLABLE = "is not one a patch may fill (only: currency, country)"
URL_SHAPE = "base URL must be https://host[:port][/path] with no user, query or fragment"
NOT_LISTED = "is not on the allowed host list (api-backup.molam.com, api.molam.com)"


def char(where: str, character: str, what: str) -> str:
    return f"{where}: {character} {what}: refused anywhere in patch code, comments and strings included"


CASES: list[tuple[str, str, str]] = [
    # Line breaks only the parser sees: the code after them reads as part of the comment.
    ("node", f'// note\u2028this.baseUrl = "{BACKUP}";', char("1:8", "U+2028 (LINE SEPARATOR)", LINE_BREAK)),
    ("node", f'// note\u2029this.baseUrl = "{BACKUP}";', char("1:8", "U+2029 (PARAGRAPH SEPARATOR)", LINE_BREAK)),
    ("python", f'# note\rself.base_url = "{BACKUP}"', char("1:7", "U+000D", LONE_CR)),
    ("node", "// note\rthis.timeout = 1000;", char("1:8", "U+000D", LONE_CR)),
    ("python", "self.timeout = 30\r", char("1:18", "U+000D", LONE_CR)),
    # Bidirectional controls ("Trojan Source"), in comments and strings.
    ("python", "self.timeout = 30  # \u202e 03 = tuoemit.fles", char("1:22", "U+202E (RIGHT-TO-LEFT OVERRIDE)", BIDI)),
    ("node", 'console.warn("a\u2066b");', char("1:16", "U+2066 (LEFT-TO-RIGHT ISOLATE)", BIDI)),
    ("python", 'logger.info("a\u2067b")', char("1:15", "U+2067 (RIGHT-TO-LEFT ISOLATE)", BIDI)),
    ("python", 'logger.info("a\u2068b")', char("1:15", "U+2068 (FIRST STRONG ISOLATE)", BIDI)),
    ("node", "this.timeout = 1000; // \u2069", char("1:25", "U+2069 (POP DIRECTIONAL ISOLATE)", BIDI)),
    ("node", "this.timeout = 1000; // \u202a", char("1:25", "U+202A (LEFT-TO-RIGHT EMBEDDING)", BIDI)),
    ("node", "/* \u202b */ this.timeout = 1000;", char("1:4", "U+202B (RIGHT-TO-LEFT EMBEDDING)", BIDI)),
    ("python", "self.timeout = 30 # \u202c", char("1:21", "U+202C (POP DIRECTIONAL FORMATTING)", BIDI)),
    ("python", "self.timeout = 30 # \u202d", char("1:21", "U+202D (LEFT-TO-RIGHT OVERRIDE)", BIDI)),
    ("node", 'console.warn("\u200e");', char("1:15", "U+200E (LEFT-TO-RIGHT MARK)", BIDI)),
    ("python", 'logger.info("\u200f")', char("1:14", "U+200F (RIGHT-TO-LEFT MARK)", BIDI)),
    ("python", "self.timeout = 30 # \u061c", char("1:21", "U+061C (ARABIC LETTER MARK)", BIDI)),
    ("python", "self.timeout = 30\n# ok\u202e", char("2:5", "U+202E (RIGHT-TO-LEFT OVERRIDE)", BIDI)),
    # Invisible characters (category Cf, and letters that render as nothing).
    ("node", "this.time\u200bout = 1000;", char("1:10", "U+200B (ZERO WIDTH SPACE)", INVISIBLE)),
    ("python", "self.timeout = 30 # zero\u200cwidth", char("1:25", "U+200C (ZERO WIDTH NON-JOINER)", INVISIBLE)),
    ("node", 'console.warn("a\u200db");', char("1:16", "U+200D (ZERO WIDTH JOINER)", INVISIBLE)),
    ("python", "self.timeout = 30 # \u2060", char("1:21", "U+2060 (WORD JOINER)", INVISIBLE)),
    ("node", "this.timeout = 1000; // \u2061", char("1:25", "U+2061 (FUNCTION APPLICATION)", INVISIBLE)),
    ("python", "self.timeout = 30 # \u2062", char("1:21", "U+2062 (INVISIBLE TIMES)", INVISIBLE)),
    ("node", "this.timeout = 1000; // \u2063", char("1:25", "U+2063 (INVISIBLE SEPARATOR)", INVISIBLE)),
    ("python", "self.timeout = 30 # \u2064", char("1:21", "U+2064 (INVISIBLE PLUS)", INVISIBLE)),
    ("node", "\ufeffthis.timeout = 1000;", char("1:1", "U+FEFF (ZERO WIDTH NO-BREAK SPACE)", INVISIBLE)),
    ("python", 'logger.info("pay\u00adment")', char("1:17", "U+00AD (SOFT HYPHEN)", INVISIBLE)),
    ("node", "this.timeout = 1000; // \u180e", char("1:25", "U+180E (MONGOLIAN VOWEL SEPARATOR)", INVISIBLE)),
    (
        "python",
        "self.timeout = 30 # \U000e0041\U000e0042",
        char("1:21", "U+E0041 (TAG LATIN CAPITAL LETTER A)", INVISIBLE),
    ),
    ("node", "this.timeout = 1000; // \ufff9", char("1:25", "U+FFF9 (INTERLINEAR ANNOTATION ANCHOR)", INVISIBLE)),
    ("python", 'logger.info("a\u3164b")', char("1:15", "U+3164 (HANGUL FILLER)", INVISIBLE)),
    # Control characters: terminal escapes hide text in `kubectl` and `git diff` output.
    ("node", "this.timeout = 1000; // \x1b[8mhidden\x1b[0m", char("1:25", "U+001B", CONTROL)),
    ("python", "self.timeout = 30\x0c", char("1:18", "U+000C", CONTROL)),
    ("node", "this.timeout = 1000;\x0b", char("1:21", "U+000B", CONTROL)),
    ("python", "self.timeout = 30 # \x85", char("1:21", "U+0085", CONTROL)),
    ("node", "this.timeout = 1000; // \x7f", char("1:25", "U+007F", CONTROL)),
    ("python", 'logger.info("\ud800")', char("1:14", "U+D800", "is a lone surrogate")),
    # Credential names outside the fallback credential rule.
    *(
        (language, code, f"{where}: credential {name} {RULE}")
        for name in (
            "AWS_SECRET_ACCESS_KEY",
            "NPM_TOKEN",
            "MOLAM_SELFHEAL_TOKEN",
            "MOLAM_SELFHEAL_URL",
            "MOLAM_SECRET_KEY",
            "GITHUB_TOKEN",
            "HTTPS_PROXY",
            "MOLAM_",
            "DATABASE_URL",
        )
        for language, code, where in (
            ("python", f'self.use_fallback_credential("{name}")', "1:30"),
            ("node", f'this.useFallbackCredential("{name}");', "1:28"),
        )
    ),
    (
        "python",
        'self.use_fallback_credential("molam_fallback_api_key")',
        "1:30: credential must be a credential name such as MOLAM_FALLBACK_API_KEY (capitals, digits, _), "
        "never the credential itself",
    ),
    (
        "node",
        'this.useFallbackCredential("MOLAM_FALLBACK\\u2028");',
        "1:28: credential contains a control or invisible character",
    ),
    # Request fields outside the fixed set, and values of the wrong type.
    (
        "python",
        'self.fill_required_fields({"currency": "XOF", "callback_url": "https://api.molam.com/cb"})',
        f"1:47: field 'callback_url' {NOT_FILLABLE}",
    ),
    (
        "node",
        'this.fillRequiredFields({ receipt_email: "attacker@example.com" });',
        f"1:27: field 'receipt_email' {NOT_FILLABLE}",
    ),
    (
        "node",
        'this.fillRequiredFields({ webhook_url: "https://api.molam.com/hook" });',
        f"1:27: field 'webhook_url' {NOT_FILLABLE}",
    ),
    ("python", 'self.fill_required_fields({"amount": 1})', f"1:28: field 'amount' {NOT_FILLABLE}"),
    ("node", 'this.fillRequiredFields({ description: "refund" });', f"1:27: field 'description' {NOT_FILLABLE}"),
    (
        "python",
        'self.fill_required_fields({"customer_currency": "XOF"})',
        f"1:28: field 'customer_currency' {NOT_FILLABLE}",
    ),
    (
        "python",
        'self.fill_required_fields({"country": "SEN"})',
        "1:39: default for field 'country' 'SEN' is not an ISO 3166-1 alpha-2 country code",
    ),
    (
        "node",
        'this.fillRequiredFields({ country: "sn" });',
        "1:36: default for field 'country' 'sn' is not an ISO 3166-1 alpha-2 country code",
    ),
    (
        "node",
        "this.fillRequiredFields({ country: 686 });",
        "1:36: default for field 'country' must be a string literal, not a number",
    ),
    (
        "python",
        'self.fill_required_fields({"currency": True})',
        "1:40: default for field 'currency' must be a string literal, not a boolean",
    ),
    ("python", "self.fill_required_fields({})", "1:27: fields must name at least one field"),
    (
        "node",
        'this.fillRequiredFields({ currency: "XOF", currency: "EUR" });',
        "1:44: field 'currency' is given twice",
    ),
    # Hosts that only look allowed: ports, user info, look-alikes, trailing dots, addresses.
    ("python", 'self.base_url = "https://api.molam.com:0443"', f"1:17: {URL_SHAPE}"),
    ("node", 'this.baseUrl = "https://api.molam.com:0";', f"1:16: {URL_SHAPE}"),
    ("node", 'this.baseUrl = "https://api.molam.com:65536";', "1:16: base URL port is out of range"),
    ("python", 'self.base_url = "https://api.molam.com:"', f"1:17: {URL_SHAPE}"),
    ("python", 'self.base_url = "https://molam@api.molam.com"', f"1:17: {URL_SHAPE}"),
    (
        "node",
        'this.baseUrl = "https://api.m\u043elam.com";',
        "1:16: base URL host 'api.m\u043elam.com' is not ASCII (look-alike characters are refused)",
    ),
    (
        "python",
        'self.base_url = "https://xn--pi-7ka.molam.com"',
        f"1:17: base URL host xn--pi-7ka.molam.com {NOT_LISTED}",
    ),
    (
        "node",
        'this.baseUrl = "https://api-backup.molam.com.";',
        "1:16: base URL host 'api-backup.molam.com.' must be a lowercase host name",
    ),
    (
        "python",
        'self.base_url = "https://api.molam.com.:443"',
        "1:17: base URL host 'api.molam.com.' must be a lowercase host name",
    ),
    ("node", 'this.baseUrl = "https://127.0.0.1";', f"1:16: base URL host 127.0.0.1 {NOT_LISTED}"),
    ("python", 'self.base_url = "https://[::1]/"', f"1:17: {URL_SHAPE}"),
    ("node", 'this.baseUrl = "https://api.molam.com%2f@evil.example";', f"1:16: {URL_SHAPE}"),
    ("python", 'self.base_url = "https://api.molam.com /v1"', f"1:17: {URL_SHAPE}"),
    (
        "node",
        'this.baseUrl = "https://api.molam.com\t/v1";',
        "1:16: base URL contains a control or invisible character",
    ),
]


@pytest.mark.parametrize(
    ("language", "code", "refusal"), CASES, ids=[f"{language}:{code[:36]!r}" for language, code, _ in CASES]
)
def test_hostile_code_is_refused_with_its_exact_message(language, code, refusal):
    with pytest.raises(PatchCodeError) as caught:
        compile_patch(language=language, code=code)
    assert str(caught.value) == refusal


def test_there_are_at_least_fifty_distinct_cases():
    assert len({(language, code) for language, code, _ in CASES}) == len(CASES) >= 50


@pytest.mark.parametrize(
    ("language", "code"),
    [
        ("python", "self.timeout = 30\r\nlogger.info('Windows line endings')\r\n"),
        ("node", "this.timeout = 30000;\r\nconsole.warn('\u26a1 emoji, accents: d\u00e9lai');\r\n"),
        ("python", "self.timeout = 30\t# a tab before the comment"),
        ("node", 'this.useFallbackCredential("MOLAM_BACKUP_API_KEY");'),
        ("python", 'self.fill_required_fields({"country": "CI"})'),
        ("node", 'this.baseUrl = "https://api-backup.molam.com:8443/v2";'),
    ],
)
def test_what_stays_allowed(language, code):
    assert compile_patch(language=language, code=code).operations


def test_fills_are_limited_to_the_documented_table():
    from selfheal.core.patchlang.operations import FILLABLE_FIELDS

    assert list(FILLABLE_FIELDS) == ["currency", "country"]
