"""Generated programs and random strings: each is refused or compiles to allowed operations only.

Never an unexpected exception. Example counts are fixed so the run is reproducible in time.
"""

from __future__ import annotations

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from selfheal.core.patchlang import PatchCodeError, compile_patch
from selfheal.core.patchlang.operations import ACTIONS, SETTINGS, camel
from tests.patchlang.allowed import assert_allowed, assert_visible

LANGUAGES = st.sampled_from(["python", "node"])
RANDOM_TEXT_EXAMPLES = 1500
PROGRAM_EXAMPLES = 1500
VALID_EXAMPLES = 500


def _outcome(language: str, code: str) -> None:
    try:
        compiled = compile_patch(language=language, code=code)
    except PatchCodeError as error:
        assert error.line >= 1 and error.column >= 1 and error.reason
        event("refused")
        return
    event("compiled")
    assert_allowed(compiled.document())
    assert_visible(code)


@settings(max_examples=RANDOM_TEXT_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(language=LANGUAGES, code=st.text(max_size=400))
def test_random_strings_are_refused_or_allowed(language, code):
    _outcome(language, code)


# Pieces of both languages, hostile and benign, assembled into programs.
NAMES = (
    [s.python for s in SETTINGS]
    + [s.node for s in SETTINGS]
    + [a.key for a in ACTIONS]
    + [camel(a.key) for a in ACTIONS]
    + [
        "__class__",
        "__proto__",
        "constructor",
        "eval",
        "warn",
        "warning",
        "info",
        "log",
        "exec",
        "system",
        "_private",
        "bаse_url",
    ]
)
RECEIVERS = ["self", "this", "logger", "console", "os", "globalThis", "ｓｅｌｆ", "self.session", "this['x']"]
STRINGS = st.one_of(
    st.sampled_from(
        [
            "https://api.molam.com",
            "https://api-backup.molam.com/v2",
            "https://api.molam.com.evil.com",
            "http://api.molam.com",
            "https://аpi.molam.com",
            "XOF",
            "EUR",
            "xof",
            "v2",
            "2024-01-31",
            "MOLAM_FALLBACK_API_KEY",
            "sk_live_abcdefgh12345678",
            "⚡ Fallback",
            "\u202e",
            "\u2028",
            "\u200b",
            "",
        ]
    ),
    st.text(max_size=30),
)


def _python_literal(value) -> str:
    return repr(value)


def _js_literal(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return repr(value)


LITERALS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-10, max_value=400),
    st.integers(min_value=-(10**6), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    STRINGS,
)


@st.composite
def programs(draw) -> tuple[str, str]:
    language = draw(LANGUAGES)
    literal = _python_literal if language == "python" else _js_literal
    own = {
        "python": ([s.python for s in SETTINGS] + [a.key for a in ACTIONS] + ["warning", "info"], ["self", "logger"]),
        "node": ([s.node for s in SETTINGS] + [camel(a.key) for a in ACTIONS] + ["warn", "log"], ["this", "console"]),
    }[language]
    lines = []
    # Mostly the language's own names, so that a fair share of programs compile.
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        receiver = draw(st.one_of(st.sampled_from(own[1]), st.sampled_from(own[1]), st.sampled_from(RECEIVERS)))
        name = draw(st.one_of(st.sampled_from(own[0]), st.sampled_from(own[0]), st.sampled_from(NAMES)))
        shape = draw(st.sampled_from(["assign", "call", "call_kw", "call_obj", "junk"]))
        values = draw(st.lists(LITERALS, max_size=4))
        if shape == "assign":
            lines.append(f"{receiver}.{name} = {literal(values[0] if values else None)}")
        elif shape == "call":
            lines.append(f"{receiver}.{name}({', '.join(literal(v) for v in values)})")
        elif shape == "call_kw":
            keys = draw(
                st.lists(
                    st.sampled_from(
                        ["attempts", "base_delay_ms", "max_delay_ms", "jitter", "use_server_time", "name", "**x"]
                    ),
                    max_size=4,
                )
            )
            lines.append(f"{receiver}.{name}({', '.join(f'{k}={literal(v)}' for k, v in zip(keys, values))})")
        elif shape == "call_obj":
            keys = draw(
                st.lists(
                    st.sampled_from(
                        [
                            "attempts",
                            "baseDelayMs",
                            "maxDelayMs",
                            "jitter",
                            "useServerTime",
                            "__proto__",
                            "currency",
                            '"country"',
                            "[k]",
                        ]
                    ),
                    max_size=4,
                )
            )
            body = ", ".join(f"{k}: {literal(v)}" for k, v in zip(keys, values))
            lines.append(f"{receiver}.{name}({{ {body} }})")
        else:
            lines.append(
                draw(
                    st.sampled_from(
                        [
                            "import os",
                            "if (x) {}",
                            "for x in y: pass",
                            "`t`",
                            "(",
                            "}",
                            "# c",
                            "// c",
                            ";",
                            "lambda: 1",
                            "x => x",
                            "\\u0074his.a = 1",
                        ]
                    )
                )
            )
    separator = draw(st.sampled_from(["\n", "; ", ";\n"]))
    return language, separator.join(lines)


@settings(max_examples=PROGRAM_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program=programs())
def test_generated_programs_are_refused_or_allowed(program):
    _outcome(*program)


@st.composite
def valid_programs(draw) -> tuple[str, str, list[dict]]:
    """Programs built from the table with in-bounds values, and the operations they must compile to."""
    choices = {
        "base_url": st.sampled_from(["https://api.molam.com", "https://api-backup.molam.com/v1"]),
        "timeout_ms": st.integers(min_value=100, max_value=120_000),
        "max_retries": st.integers(min_value=0, max_value=10),
        "default_currency": st.sampled_from(["XOF", "EUR", "USD", None]),
        "api_version": st.sampled_from(["v1", "v2", "2024-01-31"]),
        "clock_skew_seconds": st.integers(min_value=-300, max_value=300),
    }
    chosen = draw(st.lists(st.sampled_from(SETTINGS), min_size=1, max_size=6, unique_by=lambda s: s.key))
    python, node, expected = [], [], []
    for setting in chosen:
        value = draw(choices[setting.key])
        written = value / 1000 if setting.key == "timeout_ms" else value
        python.append(f"self.{setting.python} = {_python_literal(written)}")
        node.append(f"this.{setting.node} = {_js_literal(value)};")
        expected.append({"op": "set", "setting": setting.key, "value": value})
    if draw(st.booleans()):
        attempts, base = draw(st.integers(1, 10)), draw(st.integers(10, 10_000))
        cap, jitter = draw(st.integers(base, 60_000)), draw(st.booleans())
        python.append(
            f"self.retry_with_backoff(attempts={attempts}, base_delay_ms={base}, max_delay_ms={cap}, jitter={jitter})"
        )
        node.append(
            f"this.retryWithBackoff({{ attempts: {attempts}, baseDelayMs: {base}, maxDelayMs: {cap}, "
            f"jitter: {_js_literal(jitter)} }});"
        )
        expected.append(
            {
                "op": "retry_with_backoff",
                "attempts": attempts,
                "base_delay_ms": base,
                "max_delay_ms": cap,
                "jitter": jitter,
            }
        )
    return "\n".join(python), "\n".join(node), expected


@settings(max_examples=VALID_EXAMPLES, deadline=None)
@given(program=valid_programs())
def test_valid_programs_compile_to_the_same_operations_in_both_languages(program):
    python, node, expected = program
    assert list(compile_patch(language="python", code=python).operations) == expected
    assert list(compile_patch(language="node", code=node).operations) == expected


PIECES = st.sampled_from(
    [
        "0",
        "9",
        "-",
        ".",
        '"',
        "'",
        "`",
        "\\",
        "(",
        ")",
        "{",
        "}",
        "[",
        "]",
        ";",
        "\n",
        " ",
        "__proto__",
        "eval(",
        "import ",
        "+",
        "@",
        "http://",
        ".evil.com",
        "аpi",
        "\u202e",
        "\u2028",
        "\u2029",
        "\r",
        "\r\n",
        "\u200b",
        "\ufeff",
        "\x1b",
        "True",
        "true",
        "None",
        "null",
        "self.",
        "this.",
        "#",
        "//",
        "/*",
        "\x00",
        "ｓ",
    ]
)


@st.composite
def mutated_programs(draw) -> tuple[str, str]:
    """A valid program with a few characters replaced: near misses, many of which still compile."""
    python, node, _ = draw(valid_programs())
    language = draw(LANGUAGES)
    code = python if language == "python" else node
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        start = draw(st.integers(min_value=0, max_value=len(code)))
        end = draw(st.integers(min_value=start, max_value=min(len(code), start + 3)))
        code = code[:start] + draw(st.one_of(PIECES, st.text(max_size=3))) + code[end:]
    return language, code


@settings(max_examples=PROGRAM_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program=mutated_programs())
def test_mutated_programs_are_refused_or_allowed(program):
    _outcome(*program)
