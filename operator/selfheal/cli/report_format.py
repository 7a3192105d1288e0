"""Report tables as people and machines read them: aligned text, CSV or JSON."""

from __future__ import annotations

import csv
import datetime
import decimal
import io
import json
from collections.abc import Sequence
from typing import Any

from selfheal.core.reports.table import Table

FORMATS = ("table", "csv", "json")


def _json_value(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    return value


def _text(value: Any) -> str:
    """A cell as people read it: None empty, numbers to 4 decimals at most, JSON for objects."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (float, decimal.Decimal)):
        text = f"{float(value):.4f}".rstrip("0").rstrip(".")
        return "0" if text in ("-0", "") else text
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    return str(value)


def _csv_value(value: Any) -> str:
    if isinstance(value, (float, decimal.Decimal)):
        return repr(float(value)) if isinstance(value, float) else str(value)
    return _text(value)


def render(table: Table, fmt: str) -> str:
    """`table`: aligned columns (numbers right-aligned); `csv`: header + rows; `json`: a list of objects."""
    if fmt == "json":
        return (
            json.dumps(
                [{k: _json_value(v) for k, v in r.items()} for r in table.records()], ensure_ascii=False, indent=2
            )
            + "\n"
        )
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(table.columns)
        writer.writerows([_csv_value(v) for v in row] for row in table.rows)
        return out.getvalue()
    if fmt != "table":
        raise ValueError(f"unknown format {fmt!r}")
    cells = [[_text(v) for v in row] for row in table.rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(table.columns)]
    numeric = [
        all(
            isinstance(row[i], (int, float, decimal.Decimal)) and not isinstance(row[i], bool)
            for row in table.rows
            if row[i] is not None
        )
        and bool(table.rows)
        for i in range(len(table.columns))
    ]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)]
        return "  ".join(parts).rstrip()

    lines = [line(table.columns), line(["-" * w for w in widths])] + [line(row) for row in cells]
    lines.append(f"({len(table.rows)} row{'s' if len(table.rows) != 1 else ''})")
    return "\n".join(lines) + "\n"
