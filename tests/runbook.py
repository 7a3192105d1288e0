"""The runbook's SQL, read from the runbook itself so the docs and the tests cannot drift."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable
from pathlib import Path

RUNBOOK = Path(__file__).resolve().parents[1] / "docs" / "runbook.fr.md"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", RUNBOOK.read_text(encoding="utf-8"), flags=re.S)


def sql_statements() -> list[str]:
    """Every statement of the runbook's ```sql blocks, comments kept."""
    statements = []
    for block in _blocks("sql"):
        statements += [part.strip() + ";" for part in block.split(";") if re.search(r"\w", _strip_comments(part))]
    return statements


def psql_commands() -> list[list[str]]:
    """Every `psql …` command of the runbook's ```bash blocks, as argv (shell quoting undone)."""
    return psql_argvs(_blocks("bash"))


def psql_argvs(blocks: Iterable[str]) -> list[list[str]]:
    """Every command line starting with `psql ` in `blocks`, as argv, output redirection dropped."""
    commands = []
    for block in blocks:
        lines = block.splitlines()
        for start, line in enumerate(lines):
            if not line.startswith("psql "):
                continue
            # The -c argument spans lines: grow the command until its quoting closes.
            for end in range(start + 1, len(lines) + 1):
                try:
                    argv = shlex.split("\n".join(lines[start:end]))
                except ValueError:
                    continue
                commands.append(argv[: argv.index(">")] if ">" in argv else argv)
                break
    return commands


def _strip_comments(sql: str) -> str:
    return "\n".join(line for line in sql.splitlines() if not line.strip().startswith("--"))
