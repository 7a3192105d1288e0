"""bench/results.json: every benchmark's latest figures, one top-level key per benchmark.

Each benchmark calls `record(name, figures)` once it has them; the README's performance table is
generated from this file (hack/bench_table.py), so a figure quoted there is one a run printed: the
rows of `figures["table"]`, each {"figure", "value", "baseline", "ratio", "goal", "met"} as printed.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results.json"


def record(name: str, figures: dict) -> None:
    """Replace `name`'s entry in results.json with `figures`, stamped with when and where it ran."""
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results[name] = {
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        **figures,
    }
    temporary = RESULTS.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    temporary.replace(RESULTS)
