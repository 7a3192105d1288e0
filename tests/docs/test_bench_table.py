"""The README's performance table is what hack/bench_table.py makes of the committed bench/results.json."""

from __future__ import annotations

import json

import pytest

from hack import bench_table

ROW = {"figure": "reports", "value": "63,553 rows/s", "baseline": "86,637 rows/s", "ratio": "0.73x", "goal": ">= 0.7x"}


def test_readme_table_is_the_generated_one():
    readme = bench_table.README.read_text()
    results = json.loads(bench_table.RESULTS.read_text())
    assert results, "bench/results.json holds no benchmark"
    assert bench_table.render(readme, results) == readme, "run: python hack/bench_table.py"
    for name in results:
        assert f"| {name} |" in readme


def test_each_row_shows_its_verdict_baseline_and_when():
    results = {
        "reports": {"measured_at": "2026-12-04T08:00:00Z", "table": [{**ROW, "met": True}]},
        "guard": {"measured_at": "2026-12-04T08:05:00Z", "table": [{**ROW, "figure": "a | b", "met": False}]},
        "scale": {"measured_at": "2026-12-04T08:10:00Z", "runs": {}},
    }
    lines = bench_table.table(results).splitlines()
    assert lines[2:] == [
        "| guard | a \\| b | 63,553 rows/s | 86,637 rows/s | 0.73x | >= 0.7x | NOT MET | 2026-12-04T08:05:00Z |",
        "| reports | reports | 63,553 rows/s | 86,637 rows/s | 0.73x | >= 0.7x | MET | 2026-12-04T08:00:00Z |",
        "| scale | no table rows recorded (see bench/results.json) | — | — | — | — | — | 2026-12-04T08:10:00Z |",
    ]


def test_only_the_text_between_the_markers_changes():
    readme = f"# x\n\nbefore\n{bench_table.START}\nold table\n{bench_table.END}\nafter\n"
    rendered = bench_table.render(readme, {"reports": {"measured_at": "t", "table": [{**ROW, "met": None}]}})
    assert rendered.startswith(f"# x\n\nbefore\n{bench_table.START}\n| benchmark |")
    assert rendered.endswith(f"| — | t |\n{bench_table.END}\nafter\n")
    assert "old table" not in rendered


@pytest.mark.parametrize(
    ("readme", "results", "message"),
    [
        ("no markers", {}, "README.md: needs one <!-- bench-table:start --> followed by one"),
        (f"{bench_table.END}{bench_table.START}", {}, "README.md: needs one"),
        (
            f"{bench_table.START}{bench_table.END}",
            {"reports": {"table": [{"figure": "f"}]}},
            "reports.table[0]: missing",
        ),
    ],
)
def test_bad_input_is_refused_naming_it(readme, results, message):
    with pytest.raises(bench_table.TableError, match=message.replace("[", r"\[").replace("]", r"\]")):
        bench_table.render(readme, results)
