"""Patch code for Node SDKs: the accepted subset of JavaScript, read with tree-sitter's grammar.

A patch is a sequence of statements (semicolons optional), each one of:

    this.<setting> = <literal>;            this.baseUrl = "https://api-backup.molam.com";
    this.<action>(<literal>, …);           this.retryWithBackoff({ attempts: 5, … });
    console.<level>(<string literal>);     console.warn("⚡ Fallback to backup API");

A literal is a string in quotes, a plain decimal number (optionally negative), true, false,
null, or an object literal of `name: literal` pairs. Comments are allowed. Everything else is
refused with its position and reason: other names (require, eval, Function, globalThis…),
computed member access `a[b]`, optional chaining, template strings, `new`, operators,
declarations, control flow, functions and arrows, spread, getters/setters/methods, `__proto__`
keys, escapes or non-ASCII letters in identifiers.
"""

from __future__ import annotations

import re
from decimal import Decimal
from functools import lru_cache

import tree_sitter
import tree_sitter_javascript

from selfheal.core.patchlang.errors import PatchCodeError
from selfheal.core.patchlang.operations import CLIENT, LOGGER
from selfheal.core.patchlang.syntax import ActionCall, Assignment, Entry, LogCall, Statement, Value

_THIS, _CONSOLE = CLIENT["node"], LOGGER["node"]
_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_NUMBER = re.compile(r"(0|[1-9][0-9]*)(\.[0-9]+)?")
_ESCAPE = re.compile(r"\\(u\{[0-9a-fA-F]{1,6}\}|u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|\r\n|[\s\S])")
_SIMPLE_ESCAPES = {
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "0": "\0",
    "'": "'",
    '"': '"',
    "\\": "\\",
    "\n": "",
    "\r\n": "",
    "\r": "",
    "\u2028": "",
    "\u2029": "",
}

_REFUSED = {
    "import_statement": "imports are not allowed",
    "export_statement": "exports are not allowed",
    "lexical_declaration": "declarations are not allowed",
    "variable_declaration": "declarations are not allowed",
    "function_declaration": "functions are not allowed",
    "generator_function_declaration": "functions are not allowed",
    "class_declaration": "classes are not allowed",
    "function_expression": "functions are not allowed",
    "arrow_function": "functions are not allowed",
    "class": "classes are not allowed",
    "if_statement": "control flow is not allowed",
    "for_statement": "control flow is not allowed",
    "for_in_statement": "control flow is not allowed",
    "while_statement": "control flow is not allowed",
    "do_statement": "control flow is not allowed",
    "try_statement": "control flow is not allowed",
    "switch_statement": "control flow is not allowed",
    "return_statement": "control flow is not allowed",
    "throw_statement": "control flow is not allowed",
    "break_statement": "control flow is not allowed",
    "continue_statement": "control flow is not allowed",
    "labeled_statement": "control flow is not allowed",
    "with_statement": "with is not allowed",
    "debugger_statement": "debugger is not allowed",
    "statement_block": "blocks are not allowed",
    "ternary_expression": "conditional expressions are not allowed",
    "template_string": "template strings are not allowed: write a plain string literal",
    "subscript_expression": "computed member access a[b] is not allowed",
    "new_expression": "new is not allowed",
    "await_expression": "await is not allowed",
    "binary_expression": "operators are not allowed: write the resulting literal",
    "augmented_assignment_expression": "compound assignment is not allowed: assign a literal",
    "update_expression": "++ and -- are not allowed",
    "sequence_expression": "comma expressions are not allowed",
    "parenthesized_expression": "parentheses are not allowed here",
    "spread_element": "spread is not allowed",
    "array": "arrays are not values here",
    "regex": "regular expressions are not allowed",
    "yield_expression": "yield is not allowed",
    "meta_property": "new.target and import.meta are not allowed",
}


@lru_cache(maxsize=1)
def _parser() -> tree_sitter.Parser:
    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_javascript.language()))


class _Source:
    def __init__(self, code: str) -> None:
        self.bytes = code.encode("utf-8", errors="surrogatepass")
        self.lines = self.bytes.split(b"\n")

    def text(self, node: tree_sitter.Node) -> str:
        return self.bytes[node.start_byte : node.end_byte].decode("utf-8", errors="replace")

    def where(self, node: tree_sitter.Node) -> tuple[int, int]:
        # tree-sitter columns count UTF-8 bytes; people count characters.
        row, column = node.start_point
        line = self.lines[row] if row < len(self.lines) else b""
        return row + 1, len(line[:column].decode("utf-8", errors="ignore")) + 1

    def refuse(self, node: tree_sitter.Node, reason: str | None = None) -> PatchCodeError:
        return PatchCodeError(
            *self.where(node),
            reason or _REFUSED.get(node.type) or f"{node.type.replace('_', ' ')} is not allowed in patch code",
        )


def parse_javascript(code: str) -> list[Statement]:
    source = _Source(code)
    try:
        tree = _parser().parse(source.bytes)
    except (ValueError, MemoryError) as error:
        raise PatchCodeError(1, 1, f"JavaScript code refused: {error}") from None
    if tree.root_node.has_error:
        raise _syntax_error(source, tree.root_node)
    statements = []
    for node in _children(tree.root_node):
        if node.type == "empty_statement":
            continue
        statements.append(_statement(source, node))
    return statements


def _children(node: tree_sitter.Node) -> list[tree_sitter.Node]:
    return [child for child in node.named_children if child.type != "comment"]


def _syntax_error(source: _Source, root: tree_sitter.Node) -> PatchCodeError:
    # Iterative walk: deeply nested input must not exhaust the Python stack.
    stack = [root]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            what = f"missing {node.type!r}" if node.is_missing else "unexpected input"
            return PatchCodeError(*source.where(node), f"JavaScript syntax error: {what}")
        if node.has_error:
            stack.extend(reversed(node.children))
    return PatchCodeError(1, 1, "JavaScript syntax error")


def _statement(source: _Source, node: tree_sitter.Node) -> Statement:
    if node.type != "expression_statement":
        raise source.refuse(node)
    [expression] = _children(node) or [node]
    if expression.type == "assignment_expression":
        left, right = expression.child_by_field_name("left"), expression.child_by_field_name("right")
        assert left is not None and right is not None
        name = _member(source, left, receivers=(_THIS,), what="assignment target")[1]
        return Assignment(name, _literal(source, right), *source.where(expression))
    if expression.type == "call_expression":
        function, arguments = expression.child_by_field_name("function"), expression.child_by_field_name("arguments")
        assert function is not None and arguments is not None
        receiver, name = _member(source, function, receivers=(_THIS, _CONSOLE), what="call")
        if arguments.type != "arguments":
            raise source.refuse(arguments, "tagged templates are not allowed")
        values = tuple(_literal(source, argument) for argument in _children(arguments))
        if receiver == _CONSOLE:
            return LogCall(name, values, *source.where(expression))
        return ActionCall(name, values, (), *source.where(expression))
    raise source.refuse(
        expression, _REFUSED.get(expression.type, "a bare expression does nothing: assign a setting or call an action")
    )


def _identifier(source: _Source, node: tree_sitter.Node) -> str:
    text = source.text(node)
    if "\\" in text:
        raise source.refuse(node, f"escapes in identifiers are not allowed: {text!r}")
    if not text.isascii():
        raise source.refuse(node, f"non-ASCII name {text!r}: identifiers must be plain ASCII")
    return text


def _member(source: _Source, node: tree_sitter.Node, *, receivers: tuple[str, ...], what: str) -> tuple[str, str]:
    """`receiver.name` exactly: no chains, computed access, optional chaining or private names."""
    allowed = " or ".join(f"{receiver}.<name>" for receiver in receivers)
    if node.type != "member_expression":
        if node.type == "identifier":
            name = _identifier(source, node)
            raise source.refuse(node, f"{what} must be {allowed}, not the bare name {name!r}")
        if node.type == "call_expression":
            raise source.refuse(node, f"call chains are not allowed: {what} must be {allowed}")
        raise source.refuse(node, _REFUSED.get(node.type, f"{what} must be {allowed}"))
    if node.child_by_field_name("optional_chain") is not None or any(c.type == "optional_chain" for c in node.children):
        raise source.refuse(node, "optional chaining is not allowed")
    target, member = node.child_by_field_name("object"), node.child_by_field_name("property")
    assert target is not None and member is not None
    if target.type == "member_expression":
        raise source.refuse(node, f"member chains are not allowed: {what} must be {allowed}")
    if target.type == "call_expression":
        raise source.refuse(node, f"call chains are not allowed: {what} must be {allowed}")
    receiver = "this" if target.type == "this" else _identifier(source, target) if target.type == "identifier" else None
    if receiver not in receivers:
        named = f", not {receiver}.{source.text(member)[:40]}" if receiver else ""
        raise source.refuse(target, f"{what} must be {allowed}{named}")
    if member.type != "property_identifier":
        raise source.refuse(member, "private names are not allowed")
    name = _identifier(source, member)
    if name.startswith("_"):
        raise source.refuse(member, f"{receiver}.{name}: private and dunder properties are never allowed")
    return receiver, name


def _literal(source: _Source, node: tree_sitter.Node) -> Value:
    where = source.where(node)
    kind = node.type
    if kind == "string":
        return Value("string", _string(source, node), *where)
    if kind == "number":
        return Value("number", _number(source, node), *where)
    if kind in ("true", "false"):
        return Value("boolean", kind == "true", *where)
    if kind == "null":
        return Value("null", None, *where)
    if kind == "unary_expression":
        operator, argument = node.child_by_field_name("operator"), node.child_by_field_name("argument")
        if operator is not None and operator.type == "-" and argument is not None and argument.type == "number":
            return Value("number", -_number(source, argument), *where)
        raise source.refuse(node, "only a number may be negated")
    if kind == "object":
        return Value("mapping", tuple(_entry(source, child) for child in _children(node)), *where)
    if kind in ("identifier", "undefined"):
        raise source.refuse(node, f"names are not values: write the literal instead of {source.text(node)[:40]!r}")
    if kind == "call_expression":
        raise source.refuse(node, "calls are not values: write the literal")
    if kind == "member_expression":
        raise source.refuse(node, "property reads are not values: write the literal")
    if kind == "assignment_expression":
        raise source.refuse(node, "chained assignment is not allowed: one target per statement")
    raise source.refuse(node)


def _entry(source: _Source, node: tree_sitter.Node) -> Entry:
    if node.type == "method_definition":
        raise source.refuse(node, "getters, setters and methods are not allowed")
    if node.type == "shorthand_property_identifier":
        raise source.refuse(node, "shorthand properties are not allowed: write name: literal")
    if node.type != "pair":
        raise source.refuse(node)
    key, value = node.child_by_field_name("key"), node.child_by_field_name("value")
    assert key is not None and value is not None
    if key.type == "property_identifier":
        name = _identifier(source, key)
    elif key.type == "string":
        name = _string(source, key)
    elif key.type == "computed_property_name":
        raise source.refuse(key, "computed keys are not allowed")
    else:
        raise source.refuse(key, "keys must be names or string literals")
    if name.startswith("__") or name in ("constructor", "prototype"):
        raise source.refuse(key, f"key {name!r} is refused (prototype pollution)")
    if value.type == "object":
        raise source.refuse(value, "nested objects are not allowed")
    return Entry(name, _literal(source, value), *source.where(key))


def _number(source: _Source, node: tree_sitter.Node) -> Decimal:
    text = source.text(node)
    if not _NUMBER.fullmatch(text):
        raise source.refuse(
            node, f"write numbers in plain decimal (no hex, octal, exponent, separators or BigInt): {text[:40]!r}"
        )
    return Decimal(text)


def _string(source: _Source, node: tree_sitter.Node) -> str:
    raw = source.text(node)[1:-1]

    def unescape(match: re.Match[str]) -> str:
        escape: str = match[1]
        if escape in _SIMPLE_ESCAPES and not (escape == "0" and raw[match.end() : match.end() + 1].isdigit()):
            return _SIMPLE_ESCAPES[escape]
        if escape[0] in "123456789" or escape == "0":
            raise source.refuse(node, "octal escapes are not allowed in strings")
        if escape.startswith("u{"):
            point = int(escape[2:-1], 16)
            if point > 0x10FFFF:
                raise source.refuse(node, "escape beyond the last Unicode code point")
            return chr(point)
        if escape[0] in "ux" and len(escape) > 1:
            return chr(int(escape[1:], 16))
        if escape[0] in "ux":
            raise source.refuse(node, "malformed \\u or \\x escape")
        return escape

    text = _ESCAPE.sub(unescape, raw)
    try:
        # JavaScript strings are UTF-16: escaped surrogate pairs become one character.
        return text.encode("utf-16-le", errors="surrogatepass").decode("utf-16-le")
    except UnicodeDecodeError:
        raise source.refuse(node, "lone surrogate in string") from None
