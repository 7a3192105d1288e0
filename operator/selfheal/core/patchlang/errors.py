"""The one error the patch compiler raises: where the code stops being a patch, and why."""

from __future__ import annotations


class PatchCodeError(ValueError):
    """Patch code that is not in the patch language; `line` and `column` count from 1."""

    def __init__(self, line: int, column: int, reason: str) -> None:
        super().__init__(f"{line}:{column}: {reason}")
        self.line, self.column, self.reason = line, column, reason
