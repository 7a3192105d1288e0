"""Patch code for Python SDKs: the accepted subset of Python, read with the standard `ast`.

A patch is a sequence of statements, each one of:

    self.<setting> = <literal>                  self.timeout = 30
    self.<action>(<literal>, <name>=<literal>)  self.use_fallback_credential("MOLAM_FALLBACK_API_KEY")
    logger.<level>(<string literal>)            logger.warning("⚡ timeout raised to 30 s")

A literal is a string, a number (optionally negative), True, False, None, or a dict with string
keys and such values. Comments and blank lines are allowed. Everything else — imports, other
names, attribute chains, subscripts, f-strings, operators, control flow, definitions,
comprehensions, lambdas — is refused with its position and reason. Identifiers must be
plain ASCII: Python folds look-alike letters (NFKC), so `ｓｅｌｆ` would otherwise read as `self`.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
import warnings
from decimal import Decimal
from functools import lru_cache

from selfheal.core.patchlang.errors import PatchCodeError
from selfheal.core.patchlang.operations import CLIENT, LOGGER
from selfheal.core.patchlang.syntax import ActionCall, Assignment, Entry, LogCall, Statement, Value

_SELF, _LOGGER = CLIENT["python"], LOGGER["python"]

# Why the usual suspects are refused, by node type; anything else gets a generic reason.
_REFUSED = {
    ast.Import: "imports are not allowed",
    ast.ImportFrom: "imports are not allowed",
    ast.FunctionDef: "definitions are not allowed",
    ast.AsyncFunctionDef: "definitions are not allowed",
    ast.ClassDef: "definitions are not allowed",
    ast.Lambda: "lambdas are not allowed",
    ast.If: "control flow is not allowed",
    ast.For: "control flow is not allowed",
    ast.While: "control flow is not allowed",
    ast.Try: "control flow is not allowed",
    ast.With: "control flow is not allowed",
    ast.Match: "control flow is not allowed",
    ast.Raise: "control flow is not allowed",
    ast.Return: "control flow is not allowed",
    ast.IfExp: "conditional expressions are not allowed",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "comprehensions are not allowed",
    ast.JoinedStr: "f-strings are not literals: write the final text",
    ast.BinOp: "operators are not allowed: write the resulting literal",
    ast.BoolOp: "operators are not allowed: write the resulting literal",
    ast.Compare: "operators are not allowed: write the resulting literal",
    ast.Subscript: "subscripts are not allowed",
    ast.Starred: "unpacking is not allowed",
    ast.NamedExpr: "assignment expressions are not allowed",
    ast.Await: "await is not allowed",
    ast.AugAssign: "augmented assignment is not allowed: assign a literal",
    ast.AnnAssign: "annotated assignment is not allowed",
    ast.Delete: "del is not allowed",
    ast.Global: "global is not allowed",
    ast.Nonlocal: "nonlocal is not allowed",
    ast.Assert: "assert is not allowed",
    ast.List: "lists are not values here",
    ast.Tuple: "tuples are not values here",
    ast.Set: "sets are not values here",
}


def parse_python(code: str) -> list[Statement]:
    try:
        with warnings.catch_warnings():
            # Python's warnings about an author's string escapes ('\m') belong to no one's log:
            # the compiled value is what is checked and served.
            warnings.simplefilter("ignore", SyntaxWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            module = ast.parse(code, mode="exec")
    except SyntaxError as error:
        raise PatchCodeError(error.lineno or 1, error.offset or 1, f"Python syntax error: {error.msg}") from None
    except (ValueError, RecursionError, MemoryError, OverflowError) as error:
        raise PatchCodeError(1, 1, f"Python code refused: {type(error).__name__}: {str(error)[:200]}") from None
    _ascii_identifiers(code)
    return [_statement(code, node) for node in module.body]


def _ascii_identifiers(code: str) -> None:
    # After a successful parse, so tokenizing cannot fail on what ast accepted.
    try:
        for token in tokenize.generate_tokens(io.StringIO(code).readline):
            if token.type not in (tokenize.STRING, tokenize.COMMENT) and not token.string.isascii():
                raise PatchCodeError(
                    token.start[0],
                    token.start[1] + 1,
                    f"non-ASCII name {token.string!r}: identifiers must be plain ASCII",
                )
    except (tokenize.TokenError, SyntaxError) as error:
        raise PatchCodeError(1, 1, f"Python code refused: {error}") from None


@lru_cache(maxsize=8)
def _lines(code: str) -> list[bytes]:
    # Python's own line breaks (str.splitlines also breaks on form feeds and others).
    return re.split(rb"\r\n|\r|\n", code.encode("utf-8", errors="surrogatepass"))


def _where(code: str, node: ast.AST) -> tuple[int, int]:
    # ast columns count UTF-8 bytes; people count characters.
    line, offset = getattr(node, "lineno", 1), getattr(node, "col_offset", 0)
    lines = _lines(code)
    text = lines[line - 1] if line - 1 < len(lines) else b""
    return line, len(text[:offset].decode("utf-8", errors="ignore")) + 1


def _refuse(code: str, node: ast.AST, reason: str | None = None) -> PatchCodeError:
    reason = reason or _REFUSED.get(type(node)) or f"{type(node).__name__} is not allowed in patch code"
    return PatchCodeError(*_where(code, node), reason)


def _statement(code: str, node: ast.stmt) -> Statement:
    if isinstance(node, ast.Assign):
        if len(node.targets) != 1:
            raise _refuse(code, node, "chained assignment is not allowed: one target per statement")
        name = _member(code, node.targets[0], receivers=(_SELF,), what="assignment target")[1]
        return Assignment(name, _literal(code, node.value), *_where(code, node))
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        call = node.value
        receiver, name = _member(code, call.func, receivers=(_SELF, _LOGGER), what="call")
        arguments = tuple(_literal(code, argument) for argument in call.args)
        keywords = tuple(_keyword(code, keyword) for keyword in call.keywords)
        if receiver == _LOGGER:
            if keywords:
                raise _refuse(code, call.keywords[0], f"{_LOGGER}.{name}() takes no keyword arguments")
            return LogCall(name, arguments, *_where(code, node))
        return ActionCall(name, arguments, keywords, *_where(code, node))
    if isinstance(node, ast.Expr):
        raise _refuse(
            code,
            node.value,
            _REFUSED.get(type(node.value), "a bare expression does nothing: assign a setting or call an action"),
        )
    raise _refuse(code, node)


def _member(code: str, node: ast.expr, *, receivers: tuple[str, ...], what: str) -> tuple[str, str]:
    """`receiver.name` exactly: no chains, no other objects, no private or dunder names."""
    allowed = " or ".join(f"{receiver}.<name>" for receiver in receivers)
    if not isinstance(node, ast.Attribute):
        if isinstance(node, ast.Name):
            raise _refuse(code, node, f"{what} must be {allowed}, not the bare name {node.id!r}")
        if isinstance(node, (ast.Tuple, ast.List)):
            raise _refuse(code, node, "multiple targets are not allowed: one assignment per statement")
        raise _refuse(code, node, _REFUSED.get(type(node), f"{what} must be {allowed}"))
    if not isinstance(node.value, ast.Name) or node.value.id not in receivers:
        if isinstance(node.value, ast.Attribute):
            raise _refuse(code, node, f"attribute chains are not allowed: {what} must be {allowed}")
        if isinstance(node.value, ast.Call):
            raise _refuse(code, node, f"call chains are not allowed: {what} must be {allowed}")
        if isinstance(node.value, ast.Name):
            raise _refuse(code, node, f"{what} must be {allowed}, not {node.value.id}.{node.attr}")
        raise _refuse(code, node, _REFUSED.get(type(node.value), f"{what} must be {allowed}"))
    if node.attr.startswith("_"):
        raise _refuse(code, node, f"{node.value.id}.{node.attr}: private and dunder attributes are never allowed")
    return node.value.id, node.attr


def _keyword(code: str, keyword: ast.keyword) -> Entry:
    if keyword.arg is None:
        raise _refuse(code, keyword, "**unpacking is not allowed")
    return Entry(keyword.arg, _literal(code, keyword.value), *_where(code, keyword))


def _literal(code: str, node: ast.expr) -> Value:
    where = _where(code, node)
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool):
            return Value("boolean", value, *where)
        if value is None:
            return Value("null", None, *where)
        if isinstance(value, str):
            return Value("string", value, *where)
        if isinstance(value, (int, float)):
            number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
            if not number.is_finite():
                raise _refuse(code, node, "numbers must be finite")
            return Value("number", number, *where)
        raise _refuse(code, node, f"{type(value).__name__} literals are not allowed")
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = node.operand
        if (
            isinstance(inner, ast.Constant)
            and isinstance(inner.value, (int, float))
            and not isinstance(inner.value, bool)
        ):
            positive = _literal(code, inner)
            return Value("number", -positive.data, *where)  # type: ignore[operator,arg-type]
        raise _refuse(code, node, "only a number may be negated")
    if isinstance(node, ast.Dict):
        entries = []
        for key, item in zip(node.keys, node.values):
            if key is None:
                raise _refuse(code, item, "**unpacking is not allowed")
            if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
                raise _refuse(code, key, "dict keys must be string literals")
            if isinstance(item, ast.Dict):
                raise _refuse(code, item, "nested dicts are not allowed")
            entries.append(Entry(key.value, _literal(code, item), *_where(code, key)))
        return Value("mapping", tuple(entries), *where)
    if isinstance(node, ast.Name):
        raise _refuse(code, node, f"names are not values: write the literal instead of {node.id!r}")
    if isinstance(node, ast.Call):
        raise _refuse(code, node, "calls are not values: write the literal")
    if isinstance(node, ast.Attribute):
        raise _refuse(code, node, "attribute reads are not values: write the literal")
    raise _refuse(code, node, _REFUSED.get(type(node), f"{type(node).__name__} is not a literal"))
