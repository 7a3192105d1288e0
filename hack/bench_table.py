"""The README's performance table, generated from bench/results.json.

Each benchmark's entry in results.json (written by bench/results.py's `record`) may hold a
`"table"`: a list of rows, each {"figure", "value", "baseline", "ratio", "goal", "met"}, where
`value`, `baseline`, `ratio` and `goal` are the texts the benchmark printed (a number is shown
as it is) and `met` is true, false or null (no goal). The table shows every row of every
benchmark, by benchmark name, with the entry's `measured_at`; an entry without rows gets one row
saying so, so that no benchmark in results.json is silently left out.

The table is written between `<!-- bench-table:start -->` and `<!-- bench-table:end -->` in
README.md; nothing else of the file changes.

Usage: python hack/bench_table.py            rewrite README.md's table
       python hack/bench_table.py --check    exit 1 if README.md's table is not the generated one
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results.json"
README = ROOT / "README.md"
START, END = "<!-- bench-table:start -->", "<!-- bench-table:end -->"
HEADER = (
    "| benchmark | figure | measured | same-run baseline | ratio | goal | result | measured at (UTC) |\n"
    "|---|---|---|---|---|---|---|---|"
)


class TableError(ValueError):
    """results.json or README.md cannot give a table; the message names what and where."""


def _cell(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        value = f"{value:g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _verdict(met: object) -> str:
    return {True: "MET", False: "NOT MET", None: "—"}[met] if met in (True, False, None) else _cell(met)


def table(results: dict) -> str:
    """The markdown table of every benchmark's rows in `results` (results.json's object)."""
    lines = [HEADER]
    for name in sorted(results):
        entry = results[name]
        if not isinstance(entry, dict):
            raise TableError(f"results.json: {name}: not an object")
        rows = entry.get("table")
        measured_at = _cell(entry.get("measured_at"))
        if not rows:
            lines.append(
                f"| {_cell(name)} | no table rows recorded (see bench/results.json) | — | — | — | — | — | {measured_at} |"
            )
            continue
        if not isinstance(rows, list):
            raise TableError(f"results.json: {name}.table: not a list of rows")
        for index, row in enumerate(rows):
            missing = [key for key in ("figure", "value", "baseline", "ratio", "goal", "met") if key not in row]
            if missing:
                raise TableError(f"results.json: {name}.table[{index}]: missing {', '.join(missing)}")
            cells = [name, row["figure"], row["value"], row["baseline"], row["ratio"], row["goal"]]
            lines.append("| " + " | ".join(map(_cell, cells)) + f" | {_verdict(row['met'])} | {measured_at} |")
    return "\n".join(lines)


def render(readme: str, results: dict) -> str:
    """`readme` with the text between the markers replaced by the table of `results`."""
    if readme.count(START) != 1 or readme.count(END) != 1 or readme.index(START) > readme.index(END):
        raise TableError(f"README.md: needs one {START} followed by one {END}")
    before, rest = readme.split(START)
    after = rest.split(END)[1]
    return f"{before}{START}\n{table(results)}\n{END}{after}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md's table is not the generated one")
    args = parser.parse_args()
    try:
        results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        current = README.read_text()
        generated = render(current, results)
    except (TableError, json.JSONDecodeError) as error:
        sys.exit(f"bench_table: {error}")
    if args.check:
        if generated != current:
            sys.exit("bench_table: README.md's performance table is not bench/results.json's: run hack/bench_table.py")
        return
    if generated != current:
        README.write_text(generated)


if __name__ == "__main__":
    main()
