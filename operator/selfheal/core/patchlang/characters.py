"""Characters patch code may not contain anywhere, comments and strings included.

A reviewer reads patch code in a pull request, `kubectl get -o yaml` or a terminal; the parser
reads code points. Wherever the two can disagree the compiler refuses the source before
parsing it: bidirectional controls reorder what is shown ("Trojan Source"), invisible format
characters hide text, and U+2028, U+2029 or a lone CR end a line for one of the parsers but not
for most viewers, so that `// note U+2028 this.baseUrl = …` or `# note CR self.base_url = …`
would compile code that reads as a comment. Checked on the raw source, so an escape such as
"\\u202e" in a string is left to the value checks of `bounds`, which refuse it there.
"""

from __future__ import annotations

import re
import unicodedata

from selfheal.core.patchlang.errors import PatchCodeError

# Everything outside printable ASCII, tab and LF is looked at; patch code is mostly ASCII.
_SUSPECT = re.compile(r"[^\t\n\x20-\x7e]")
# Unicode's bidirectional controls (all of category Cf).
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Letters that render as nothing at all (Hangul fillers): invisible, though not of category Cf.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0")


def _what(code: str, index: int) -> str | None:
    """Why the character at `index` is refused, or None."""
    char = code[index]
    if char == "\r":
        return (
            None if code[index + 1 : index + 2] == "\n" else "a lone carriage return (a line break only to the parser)"
        )
    if char in "\u2028\u2029":
        return "a line or paragraph separator (a line break only to the parser)"
    if char in _BIDI:
        return "a bidirectional control character (it reorders what a reviewer sees)"
    category = unicodedata.category(char)
    if category == "Cf" or char in _BLANK_LETTERS:
        return "an invisible character"
    if category == "Cc":
        return "a control character"
    if category == "Cs":
        return "a lone surrogate"
    return None


def describe(char: str) -> str:
    """`U+202E (RIGHT-TO-LEFT OVERRIDE)`; controls have no name, only their code point."""
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X}" + (f" ({name})" if name else "")


def check_characters(code: str) -> None:
    """PatchCodeError at the first refused character: line and column (in characters, from 1)."""
    for match in _SUSPECT.finditer(code):
        index = match.start()
        what = _what(code, index)
        if what is None:
            continue
        line = code.count("\n", 0, index) + 1
        column = index - (code.rfind("\n", 0, index) + 1) + 1
        raise PatchCodeError(
            line,
            column,
            f"{describe(code[index])} is {what}: refused anywhere in patch code, comments and strings included",
        )
