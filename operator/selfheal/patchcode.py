"""Syntax check of patch code in its SDK language (pure logic, no I/O).

This is the seam for the safe-subset compiler: today it only proves that the code parses in
its language; the compiler will replace `check_code` with one that also turns the code into
operations. Patch code is parsed, never executed.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import lru_cache

import tree_sitter
import tree_sitter_javascript


@dataclass(frozen=True)
class CodeProblem:
    line: int
    column: int
    reason: str

    def __str__(self) -> str:
        return f"{self.line}:{self.column}: {self.reason}"


def check_code(*, language: str, code: str) -> list[CodeProblem]:
    """Problems that stop `code` from being a patch for `language`; empty when it parses."""
    if "\x00" in code:
        return [CodeProblem(1, 1, "contains a NUL byte")]
    if language == "python":
        return _check_python(code)
    if language == "node":
        return _check_javascript(code)
    return [CodeProblem(1, 1, f"unknown SDK language {language!r}")]


def _check_python(code: str) -> list[CodeProblem]:
    try:
        ast.parse(code, mode="exec")
    except SyntaxError as error:
        return [CodeProblem(error.lineno or 1, error.offset or 1, f"Python syntax error: {error.msg}")]
    except (ValueError, RecursionError, MemoryError) as error:
        return [CodeProblem(1, 1, f"Python code rejected: {error}")]
    return []


@lru_cache(maxsize=1)
def _javascript_parser() -> tree_sitter.Parser:
    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_javascript.language()))


def _check_javascript(code: str) -> list[CodeProblem]:
    tree = _javascript_parser().parse(code.encode("utf-8"))
    if not tree.root_node.has_error:
        return []
    first = _first_error(tree.root_node)
    line, column = first.start_point if first is not None else (0, 0)
    what = f"missing {first.type!r}" if first is not None and first.is_missing else "unexpected input"
    return [CodeProblem(line + 1, column + 1, f"JavaScript syntax error: {what}")]


def _first_error(root: tree_sitter.Node) -> tree_sitter.Node | None:
    # Iterative walk: deeply nested input must not exhaust the Python stack.
    stack = [root]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            return node
        if node.has_error:
            stack.extend(reversed(node.children))
    return None
