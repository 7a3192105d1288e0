"""`compile_patch`: patch code in, operations out — or the first place it stops being a patch.

Patch code is read, never executed: it is size-checked, its characters checked (`characters`:
nothing that shows differently from what the parser reads), parsed by the language's own parser
(Python's `ast`, tree-sitter's JavaScript grammar), reduced to the statement shapes of
`syntax`, then each name is looked up in the table of `operations` and each literal checked
against its bounds. The front-ends walk only the shapes they accept, to a fixed depth, so
hostile input is refused without recursion, evaluation or unbounded work.
"""

from __future__ import annotations

from dataclasses import dataclass

from selfheal.core.patchlang import bounds
from selfheal.core.patchlang.bounds import Json
from selfheal.core.patchlang.characters import check_characters
from selfheal.core.patchlang.errors import PatchCodeError
from selfheal.core.patchlang.hosts import DEFAULT_HOSTS, AllowedHosts
from selfheal.core.patchlang.javascript_subset import parse_javascript
from selfheal.core.patchlang.operations import (
    ACTION_BY_NAME,
    CLIENT,
    LANGUAGES,
    LOG_LEVELS,
    LOGGER,
    MAX_OPERATIONS,
    SETTING_BY_NAME,
    Action,
    Language,
    Operation,
    action_operation,
    canonical_json,
    document,
    log_operation,
    set_operation,
)
from selfheal.core.patchlang.python_subset import parse_python
from selfheal.core.patchlang.syntax import ActionCall, Assignment, Entry, LogCall, Statement

# The CRD's maxLength for patchCode and rollbackCode; checked before any parsing.
MAX_CODE_CHARS = 8192


@dataclass(frozen=True)
class CompiledPatch:
    language: Language
    operations: tuple[Operation, ...]

    def document(self) -> dict[str, Json]:
        return document(list(self.operations))

    def canonical_json(self) -> str:
        return canonical_json(self.document())


def compile_patch(*, language: str, code: str, allowed_hosts: AllowedHosts = DEFAULT_HOSTS) -> CompiledPatch:
    """The operations `code` stands for, or PatchCodeError(line, column, reason)."""
    if language not in LANGUAGES:
        raise PatchCodeError(1, 1, f"unknown SDK language {language!r} (python or node)")
    if not isinstance(code, str):
        raise PatchCodeError(1, 1, "patch code must be text")
    if len(code) > MAX_CODE_CHARS:
        raise PatchCodeError(1, 1, f"patch code is longer than {MAX_CODE_CHARS} characters")
    if "\x00" in code:
        raise PatchCodeError(1, 1, "contains a NUL byte")
    check_characters(code)
    statements = parse_python(code) if language == "python" else parse_javascript(code)
    return CompiledPatch(language, tuple(_operations(language, statements, allowed_hosts)))


def _operations(language: Language, statements: list[Statement], hosts: AllowedHosts) -> list[Operation]:
    operations: list[Operation] = []
    done: set[str] = set()
    for statement in statements:
        if len(operations) == MAX_OPERATIONS:
            raise PatchCodeError(statement.line, statement.column, f"more than {MAX_OPERATIONS} operations")
        if isinstance(statement, Assignment):
            operation = _assignment(language, statement, hosts)
            what = f"{CLIENT[language]}.{statement.name}"
        elif isinstance(statement, ActionCall):
            operation = _action(language, statement, hosts)
            what = f"{CLIENT[language]}.{statement.name}()"
        else:
            operations.append(_log(language, statement, hosts))
            continue
        # Each setting and action at most once: a patch is a set of changes, re-runnable as is.
        if what in done:
            raise PatchCodeError(statement.line, statement.column, f"{what} appears twice")
        done.add(what)
        operations.append(operation)
    if not operations:
        raise PatchCodeError(1, 1, "patch code has no operations")
    return operations


def _private(name: str) -> bool:
    return name.startswith("_")


def _assignment(language: Language, statement: Assignment, hosts: AllowedHosts) -> Operation:
    setting = SETTING_BY_NAME[language].get(statement.name)
    if setting is None:
        raise PatchCodeError(statement.line, statement.column, _unknown(language, statement.name, assigned=True))
    return set_operation(setting, setting.checker(language)(statement.value, hosts))


def _unknown(language: Language, name: str, *, assigned: bool) -> str:
    client = CLIENT[language]
    if _private(name):
        return f"{client}.{name}: private and dunder attributes are never allowed"
    if assigned and name in ACTION_BY_NAME[language]:
        return f"{client}.{name} is a healing action: call it, do not assign it"
    if not assigned and name in SETTING_BY_NAME[language]:
        return f"{client}.{name} is a setting: assign a literal to it, do not call it"
    if assigned:
        return f"{client}.{name} is not a setting a patch may change (known: {', '.join(SETTING_BY_NAME[language])})"
    return f"{client}.{name}() is not a healing action (known: {', '.join(ACTION_BY_NAME[language])})"


def _action(language: Language, statement: ActionCall, hosts: AllowedHosts) -> Operation:
    action = ACTION_BY_NAME[language].get(statement.name)
    if action is None:
        raise PatchCodeError(statement.line, statement.column, _unknown(language, statement.name, assigned=False))
    call = f"{CLIENT[language]}.{statement.name}()"
    where = (statement.line, statement.column)
    if action.options:
        arguments = _options(language, action, statement, _option_entries(language, statement, call), hosts)
    else:
        if statement.keywords:
            raise PatchCodeError(*where, f"{call} takes no keyword arguments")
        if len(statement.arguments) != len(action.positional):
            raise PatchCodeError(
                *where, f"{call} takes {len(action.positional)} argument(s), got {len(statement.arguments)}"
            )
        arguments = {
            param.key: param.check(value, hosts) for param, value in zip(action.positional, statement.arguments)
        }
    problem = action.rule(arguments) if action.rule else None
    if problem:
        raise PatchCodeError(*where, f"{call}: {problem}")
    return action_operation(action, arguments)


def _option_entries(language: Language, statement: ActionCall, call: str) -> tuple[Entry, ...]:
    where = (statement.line, statement.column)
    if language == "python":
        if statement.arguments:
            raise PatchCodeError(*where, f"{call} takes keyword arguments only")
        return statement.keywords
    if len(statement.arguments) != 1 or statement.arguments[0].kind != "mapping":
        raise PatchCodeError(*where, f"{call} takes one object literal {{ … }} of options")
    entries = statement.arguments[0].data
    assert isinstance(entries, tuple)
    return entries


def _options(
    language: Language, action: Action, statement: ActionCall, entries: tuple[Entry, ...], hosts: AllowedHosts
) -> dict[str, Json]:
    params = {param.name(language): param for param in action.options}
    arguments: dict[str, Json] = {}
    for entry in entries:
        param = params.get(entry.key)
        if param is None:
            raise PatchCodeError(
                entry.line,
                entry.column,
                f"{entry.key!r} is not an option of {statement.name}() (options: {', '.join(params)})",
            )
        if param.key in arguments:
            raise PatchCodeError(entry.line, entry.column, f"option {entry.key!r} is given twice")
        arguments[param.key] = param.check(entry.value, hosts)
    missing = [name for name, param in params.items() if param.key not in arguments]
    if missing:
        raise PatchCodeError(
            statement.line, statement.column, f"{statement.name}() needs every option; missing: {', '.join(missing)}"
        )
    return {param.key: arguments[param.key] for param in action.options}


def _log(language: Language, statement: LogCall, hosts: AllowedHosts) -> Operation:
    call = f"{LOGGER[language]}.{statement.level}()"
    level = LOG_LEVELS[language].get(statement.level)
    if level is None:
        raise PatchCodeError(
            statement.line, statement.column, f"{call} is not a log call (known: {', '.join(LOG_LEVELS[language])})"
        )
    if len(statement.arguments) != 1:
        raise PatchCodeError(statement.line, statement.column, f"{call} takes exactly one string literal")
    return log_operation(level, bounds.plain_text(statement.arguments[0], what="log message"))
