"""Outcome rows of `sdk_patch_applications`, written with COPY in its text format."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

import psycopg
from pydantic_core import to_json

from selfheal.registry.copy_text import NULL, needs_escape, text, timestamp

COLUMNS = (
    "patch_id",
    "developer_id",
    "sdk_language",
    "error_encountered",
    "success",
    "rollback_triggered",
    "patch_applied",
    "context",
    "applied_at",
)


class Application(NamedTuple):
    """One row of sdk_patch_applications, in COPY column order: written as it is, no copy per row."""

    patch_id: str | None
    developer_id: str
    sdk_language: str
    error_encountered: str
    success: bool
    rollback_triggered: bool
    patch_applied: bool
    context: str  # JSON text; see `context_json`
    applied_at: datetime

    def copy_line(self) -> bytes:
        """This row in COPY text format, UTF-8: what the buffer holds (a str of one non-Latin-1
        character takes 4 bytes a character) and what COPY sends. A batch is one join of these.

        Called once per reported outcome: the texts are tested for escapes once, joined, and
        written as they are when, as nearly always, none holds a character to escape."""
        patch_id, developer_id, sdk, error, context = (
            self.patch_id,
            self.developer_id,
            self.sdk_language,
            self.error_encountered,
            self.context,
        )
        if needs_escape(f"{patch_id or ''}{developer_id}{sdk}{error}{context}"):
            patch_id, developer_id, sdk, error, context = map(text, (patch_id, developer_id, sdk, error, context))
        elif patch_id is None:
            patch_id = NULL
        return (
            f"{patch_id}\t{developer_id}\t{sdk}\t{error}\t{'t' if self.success else 'f'}\t"
            f"{'t' if self.rollback_triggered else 'f'}\t{'t' if self.patch_applied else 'f'}\t{context}\t"
            f"{timestamp(self.applied_at)}\n"
        ).encode()


def context_json(context: dict) -> str:
    """The jsonb column's text: COPY hands it to PostgreSQL, which parses and checks it.

    pydantic's serialiser: quicker than `json.dumps` on these small objects.
    """
    return to_json(context).decode() if context else "{}"


async def copy_lines(conn: psycopg.AsyncConnection, batch: list[bytes]) -> None:
    """Write a batch of `Application.copy_line()` lines in one transaction."""
    async with conn.transaction():
        async with conn.cursor() as cursor:
            async with cursor.copy(f"COPY sdk_patch_applications ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                await copy.write(b"".join(batch))
