"""What a patch must not reach, as shared vectors (tests/vectors/operations.json, via `vectors`).

Signed patches whose operations try to send another secret as the API key, to fill request
fields an attacker would like (a callback URL, a receipt e-mail, the amount), or to move
`base_url` to a host that only looks allowed. Each refusal is written out by hand, exactly as
both SDKs must word it.
"""

from __future__ import annotations

# Credentials that have a value in the vectors' environment: the fallback key, and the secrets a
# process typically holds besides it. Only the first may ever be used.
SET_CREDENTIALS = [
    "MOLAM_FALLBACK_API_KEY",
    "MOLAM_BACKUP_KEY",
    "MOLAM_API_KEY",
    "AWS_SECRET_ACCESS_KEY",
    "NPM_TOKEN",
    "GITHUB_TOKEN",
    "MOLAM_SELFHEAL_TOKEN",
    "MOLAM_SELFHEAL_URL",
    "MOLAM_SECRET_KEY",
    "HTTPS_PROXY",
    "MOLAM_",
]

DEFAULT_RULE = "names starting MOLAM_, except MOLAM_SELFHEAL_* and MOLAM_SECRET_KEY"
SHAPE = "must be a credential name such as MOLAM_FALLBACK_API_KEY"
FIELDS = "currency, country"
URL_SHAPE = "must be https://host[:port][/path]"


def _document(*operations: dict) -> dict:
    return {"format": "selfheal.operations", "version": 1, "operations": list(operations)}


def _credential(name: object) -> dict:
    return _document({"op": "use_fallback_credential", "name": name})


def _fill(fields: object) -> dict:
    return _document({"op": "fill_required_fields", "fields": fields})


def _base_url(url: str) -> dict:
    return _document({"op": "set", "setting": "base_url", "value": url})


def _not_allowed(name: str, rule: str = DEFAULT_RULE) -> str:
    return f"operations[0] (use_fallback_credential): {name} is not a fallback credential this client allows ({rule})"


def accepted(initial_state: dict, context: dict) -> list[dict]:
    """What stays possible: a prefix the application configured, the primary key's own variable."""

    def case(name: str, document: dict, changes: dict, *, fallback: object = None, fill: dict | None = None) -> dict:
        return {
            "name": name,
            "context": {**context, "fallback_credentials": fallback},
            "document": document,
            "expect": {"state": {**initial_state, **changes}, "logs": [], "fill": fill or {}},
        }

    return [
        case(
            "credential_by_a_configured_prefix",
            _credential("MOLAM_BACKUP_KEY"),
            {"credential": "MOLAM_BACKUP_KEY"},
            fallback=["MOLAM_BACKUP_*"],
        ),
        case("credential_molam_api_key_by_default", _credential("MOLAM_API_KEY"), {"credential": "MOLAM_API_KEY"}),
        case(
            "fill_only_country",
            _fill({"country": "SN"}),
            {},
            fill={"country": "SN"},
        ),
        case(
            "base_url_with_a_port",
            _base_url("https://api-backup.molam.com:8443/v1"),
            {"base_url": "https://api-backup.molam.com:8443/v1"},
        ),
    ]


def refused(context: dict) -> list[dict]:
    def case(name: str, document: dict, reason: str, *, fallback: object = None) -> dict:
        return {
            "name": name,
            "context": {**context, "fallback_credentials": fallback},
            "document": document,
            "expect": {"refused": True, "reason": reason},
        }

    credential = "operations[0] (use_fallback_credential): "
    fill = "operations[0] (fill_required_fields): "
    url = "operations[0] (set): "
    cases = [
        # Secrets of the process that are not the application's Molam credentials.
        *(
            case(f"credential_{name.lower()}", _credential(name), _not_allowed(name))
            for name in (
                "AWS_SECRET_ACCESS_KEY",
                "NPM_TOKEN",
                "GITHUB_TOKEN",
                "MOLAM_SELFHEAL_TOKEN",
                "MOLAM_SELFHEAL_URL",
                "MOLAM_SECRET_KEY",
                "HTTPS_PROXY",
            )
        ),
        case("credential_prefix_alone", _credential("MOLAM_"), _not_allowed("MOLAM_")),
        case(
            "credential_outside_a_configured_list",
            _credential("MOLAM_API_KEY"),
            _not_allowed("MOLAM_API_KEY", "fallback credentials: MOLAM_FALLBACK_API_KEY"),
            fallback=["MOLAM_FALLBACK_API_KEY"],
        ),
        case(
            "credential_outside_a_configured_prefix",
            _credential("MOLAM_FALLBACK_API_KEY"),
            _not_allowed("MOLAM_FALLBACK_API_KEY", "fallback credentials: MOLAM_BACKUP_*"),
            fallback=["MOLAM_BACKUP_*"],
        ),
        case(
            "credential_with_none_configured",
            _credential("MOLAM_FALLBACK_API_KEY"),
            _not_allowed("MOLAM_FALLBACK_API_KEY", "none"),
            fallback=[],
        ),
        case(
            "credential_selfheal_token_under_a_wide_prefix",
            _credential("MOLAM_SELFHEAL_TOKEN"),
            _not_allowed("MOLAM_SELFHEAL_TOKEN", "fallback credentials: MOLAM_*"),
            fallback=["MOLAM_*"],
        ),
        case(
            "credential_allowed_but_without_a_value",
            _credential("MOLAM_OTHER_KEY"),
            credential + "no credential named MOLAM_OTHER_KEY is configured",
        ),
        # Names that are not names.
        case("credential_lower_case", _credential("molam_fallback_api_key"), credential + SHAPE),
        case("credential_trailing_newline", _credential("MOLAM_FALLBACK_API_KEY\n"), credential + SHAPE),
        case("credential_trailing_space", _credential("MOLAM_FALLBACK_API_KEY "), credential + SHAPE),
        case("credential_cyrillic_letter", _credential("MOLAM_FALLBACK_\u0410PI_KEY"), credential + SHAPE),
        case("credential_too_long", _credential("MOLAM_" + "K" * 59), credential + SHAPE),
        case("credential_not_a_string", _credential(42), credential + SHAPE),
        case("credential_value_not_name", _credential("pk_live_0123456789abcdef"), credential + SHAPE),
        # Request fields a patch may not fill, and values of the wrong type.
        *(
            case(
                f"fill_{field}",
                _fill({"currency": "XOF", field: value}),
                fill + f"field {field} is not one a patch may fill (only: {FIELDS})",
            )
            for field, value in (
                ("callback_url", "https://api.molam.com/callback"),
                ("receipt_email", "attacker@example.com"),
                ("webhook_url", "https://evil.example/hook"),
                ("amount", 1),
                ("description", "refund to attacker"),
                ("payment_id", "pay_attacker"),
                ("customer_currency", "XOF"),
            )
        ),
        case("fill_name_upper_case", _fill({"Country": "SN"}), fill + "field names must be snake_case ASCII"),
        case("fill_name_proto", _fill({"__proto__": "SN"}), fill + "field names must be snake_case ASCII"),
        case(
            "fill_names_checked_before_values",
            _fill({"currency": "francs", "callback_url": "https://evil.example"}),
            fill + f"field callback_url is not one a patch may fill (only: {FIELDS})",
        ),
        case(
            "fill_currency_lower_case",
            _fill({"currency": "xof"}),
            fill + "field currency: must be an ISO 4217 currency code",
        ),
        case(
            "fill_currency_number", _fill({"currency": 952}), fill + "field currency: must be an ISO 4217 currency code"
        ),
        case(
            "fill_currency_null", _fill({"currency": None}), fill + "field currency: must be an ISO 4217 currency code"
        ),
        case(
            "fill_country_alpha3",
            _fill({"country": "SEN"}),
            fill + "field country: must be an ISO 3166-1 alpha-2 country code",
        ),
        case(
            "fill_country_lower_case",
            _fill({"country": "sn"}),
            fill + "field country: must be an ISO 3166-1 alpha-2 country code",
        ),
        case(
            "fill_country_boolean",
            _fill({"country": True}),
            fill + "field country: must be an ISO 3166-1 alpha-2 country code",
        ),
        case("fill_nothing", _fill({}), fill + "must map at least one field name to its default"),
        case("fill_a_list", _fill(["currency", "XOF"]), fill + "must map at least one field name to its default"),
        # Hosts that only look allowed.
        case("base_url_userinfo", _base_url("https://user@api.molam.com"), url + URL_SHAPE),
        case("base_url_userinfo_after_host", _base_url("https://api.molam.com@evil.example"), url + URL_SHAPE),
        case("base_url_password", _base_url("https://user:pw@api.molam.com"), url + URL_SHAPE),
        case("base_url_cyrillic_host", _base_url("https://\u0430pi.molam.com"), url + URL_SHAPE),
        case(
            "base_url_punycode_host",
            _base_url("https://xn--pi-7ka.molam.com"),
            url + "host xn--pi-7ka.molam.com is not one this client allows",
        ),
        case(
            "base_url_trailing_dot",
            _base_url("https://api.molam.com."),
            url + "host api.molam.com. is not one this client allows",
        ),
        case(
            "base_url_suffix_host",
            _base_url("https://api.molam.com.evil.example"),
            url + "host api.molam.com.evil.example is not one this client allows",
        ),
        case("base_url_upper_case_host", _base_url("https://API.MOLAM.COM"), url + URL_SHAPE),
        case("base_url_port_zero", _base_url("https://api.molam.com:0"), url + URL_SHAPE),
        case("base_url_port_leading_zero", _base_url("https://api.molam.com:0443"), url + URL_SHAPE),
        case(
            "base_url_port_too_high",
            _base_url("https://api.molam.com:65536"),
            url + "port must be between 1 and 65535",
        ),
        case("base_url_empty_port", _base_url("https://api.molam.com:"), url + URL_SHAPE),
        case("base_url_backslash", _base_url("https://api.molam.com\\@evil.example"), url + URL_SHAPE),
        case("base_url_percent_encoded_host", _base_url("https://api%2emolam.com"), url + URL_SHAPE),
        case("base_url_query", _base_url("https://api.molam.com/?next=https://evil.example"), url + URL_SHAPE),
        case("base_url_fragment", _base_url("https://api.molam.com#@evil.example"), url + URL_SHAPE),
        case(
            "base_url_ip_address",
            _base_url("https://127.0.0.1"),
            url + "host 127.0.0.1 is not one this client allows",
        ),
        case("base_url_ipv6", _base_url("https://[::1]"), url + URL_SHAPE),
        case("base_url_space", _base_url("https://api.molam.com /v1"), url + URL_SHAPE),
        case("base_url_protocol_relative", _base_url("//api.molam.com"), url + URL_SHAPE),
        # Log lines that would show differently from what they hold.
        *(
            case(
                f"log_{name}",
                _document({"op": "log", "level": "warning", "message": f"ok{char}evil"}),
                "operations[0] (log): contains a control, invisible or bidirectional character",
            )
            for name, char in (
                ("line_separator", "\u2028"),
                ("lone_carriage_return", "\r"),
                ("zero_width_space", "\u200b"),
                ("right_to_left_isolate", "\u2067"),
                ("escape_sequence", "\x1b[2K"),
            )
        ),
    ]
    return cases


def credential_options() -> list[dict]:
    """A client's `fallback_credentials` option (`fallbackCredentials` in Node): refused with a
    reason, or the names a patch may then use and those it may not."""

    def refused_option(name: str, value: object, reason: str, *, option: str = "fallback_credentials") -> dict:
        return {"name": name, "value": value, "expect": {"option": option, "reason": reason}}

    def accepted_option(name: str, value: object, allows: list[str], refuses: list[str]) -> dict:
        return {"name": name, "value": value, "expect": {"allows": allows, "refuses": refuses}}

    shape = "is not a credential name (capitals, digits and _, such as MOLAM_FALLBACK_API_KEY"
    own = "is the SDK's own setting or signing secret, never a fallback credential"
    kinds = "must map credential names to API keys, or list names (NAME or PREFIX_*) read from the environment"
    return [
        refused_option("a_plain_string", "MOLAM_FALLBACK_API_KEY", kinds),
        refused_option("a_number", 42, kinds),
        refused_option("a_name_not_a_string", [42], "credential names must be strings"),
        refused_option(
            "a_lower_case_name", ["molam_key"], f'"molam_key" {shape}; or a prefix such as MOLAM_FALLBACK_*)'
        ),
        refused_option(
            "a_name_with_a_newline", ["MOLAM_KEY\n"], f'"MOLAM_KEY\\n" {shape}; or a prefix such as MOLAM_FALLBACK_*)'
        ),
        refused_option("the_selfheal_token", ["MOLAM_SELFHEAL_TOKEN"], f"MOLAM_SELFHEAL_TOKEN {own}"),
        refused_option("the_selfheal_url", ["MOLAM_SELFHEAL_URL"], f"MOLAM_SELFHEAL_URL {own}"),
        refused_option(
            "the_selfheal_prefix", ["MOLAM_SELFHEAL_*"], "MOLAM_SELFHEAL_* covers only the SDK's own settings"
        ),
        refused_option("the_signing_secret", {"MOLAM_SECRET_KEY": "sk_test"}, f"MOLAM_SECRET_KEY {own}"),
        refused_option("a_proxy_variable", ["HTTPS_PROXY"], f"HTTPS_PROXY {own}"),
        refused_option("a_prefix_in_a_mapping", {"MOLAM_*": "pk_x"}, f'"MOLAM_*" {shape})'),
        refused_option(
            "a_value_with_a_space",
            {"MOLAM_FALLBACK_API_KEY": "pk fallback"},
            "contains whitespace or a control character (a newline copied from a file?)",
            option="fallback_credentials[MOLAM_FALLBACK_API_KEY]",
        ),
        accepted_option(
            "default",
            None,
            ["MOLAM_FALLBACK_API_KEY", "MOLAM_API_KEY"],
            [
                "AWS_SECRET_ACCESS_KEY",
                "NPM_TOKEN",
                "MOLAM_SELFHEAL_TOKEN",
                "MOLAM_SELFHEAL_URL",
                "MOLAM_SECRET_KEY",
                "HTTPS_PROXY",
                "MOLAM_",
            ],
        ),
        accepted_option(
            "names_and_prefixes",
            ["MOLAM_FALLBACK_API_KEY", "MOLAM_BACKUP_*", "ACME_MOLAM_KEY"],
            ["MOLAM_FALLBACK_API_KEY", "MOLAM_BACKUP_KEY", "ACME_MOLAM_KEY"],
            ["MOLAM_API_KEY", "MOLAM_BACKUP_", "MOLAM_FALLBACK_API_KEY_2"],
        ),
        accepted_option(
            "a_mapping", {"MOLAM_FALLBACK_API_KEY": "pk_fallback"}, ["MOLAM_FALLBACK_API_KEY"], ["MOLAM_API_KEY"]
        ),
        accepted_option("a_wide_prefix", ["MOLAM_*"], ["MOLAM_API_KEY"], ["MOLAM_SELFHEAL_TOKEN", "MOLAM_SECRET_KEY"]),
        accepted_option("none", [], [], ["MOLAM_FALLBACK_API_KEY"]),
    ]
