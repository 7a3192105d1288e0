"""The runbook's reports as people and machines read them, its KPIs and its daily checklist.

Pure logic: figures come in (from selfheal.registry.reports or a Prometheus answer), tables,
KPI values and checklist verdicts come out. No database, HTTP or Kubernetes import.
"""

from __future__ import annotations

import csv
import datetime
import decimal
import io
import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

FORMATS = ("table", "csv", "json")

PASS, FAIL, NOT_CHECKED = "pass", "fail", "not checked"


# --- windows -----------------------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_window(text: str) -> datetime.timedelta:
    """`90m`, `24h`, `7d`, `2w` → a timedelta (positive)."""
    match = _DURATION.match(text)
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"{text!r} is not a duration like 90m, 24h, 7d or 2w")
    return datetime.timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def describe_window(window: datetime.timedelta) -> str:
    seconds = int(window.total_seconds())
    if seconds % 86400 == 0 and seconds > 86400:
        return f"{seconds // 86400}d"
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _count(n: int, noun: str, plural: str | None = None) -> str:
    return f"{n} {noun if n == 1 else (plural or noun + 's')}"


# --- tables ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Table:
    columns: tuple[str, ...]
    rows: list[tuple]

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row)) for row in self.rows]


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
        return json.dumps([{k: _json_value(v) for k, v in r.items()} for r in table.records()],
                          ensure_ascii=False, indent=2) + "\n"
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
    numeric = [all(isinstance(row[i], (int, float, decimal.Decimal)) and not isinstance(row[i], bool)
                   for row in table.rows if row[i] is not None) and bool(table.rows)
               for i in range(len(table.columns))]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)]
        return "  ".join(parts).rstrip()

    lines = [line(table.columns), line(["-" * w for w in widths])] + [line(row) for row in cells]
    lines.append(f"({len(table.rows)} row{'s' if len(table.rows) != 1 else ''})")
    return "\n".join(lines) + "\n"


# --- KPIs --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class WindowFigures:
    """Counts over one window of sdk_patch_applications (see selfheal.registry.reports)."""

    errors: int                 # every row: an SDK error that reached the registry
    applied: int                # patch_applied: a patch was served and applied
    successful: int             # applied and the retried call succeeded
    rollbacks: int              # applied and rolled back
    developers_enabled: int     # distinct developers with at least one row (their SDK calls self-heal)
    developers_known: int       # those, plus holders of a live `developer` token
    repairs_measured: int = 0   # patches first applied with success in the window, tied to earlier misses
    patches_fixed: int = 0      # patches first applied with success in the window
    mttr_seconds: float | None = None


@dataclass(frozen=True)
class Kpi:
    kpi: str
    value: float | None
    unit: str
    numerator: float | None
    denominator: float | None
    basis: str

    def row(self) -> tuple:
        return (self.kpi, None if self.value is None else round(self.value, 4), self.unit, self.numerator,
                self.denominator, self.basis)


KPI_COLUMNS = ("kpi", "value", "unit", "numerator", "denominator", "basis")


def percent(numerator: int, denominator: int) -> float | None:
    return None if denominator == 0 else 100.0 * numerator / denominator


def kpis(figures: WindowFigures) -> list[Kpi]:
    """The runbook's five KPIs; docs/runbook.en.md ("KPIs") defines each."""
    f = figures
    return [
        Kpi("application_rate", percent(f.successful, f.applied), "%", f.successful, f.applied,
            "applications that succeeded / patches applied"),
        Kpi("rollback_rate", percent(f.rollbacks, f.applied), "%", f.rollbacks, f.applied,
            "applications rolled back / patches applied"),
        Kpi("mttr", f.mttr_seconds, "s", f.repairs_measured, f.patches_fixed,
            "mean of (first successful application of a patch - first unpatched occurrence of its "
            "error signature before it), over patches first healed in the window; numerator: repairs "
            "measured, denominator: patches first healed"),
        Kpi("coverage", percent(f.applied, f.errors), "%", f.applied, f.errors,
            "SDK errors answered by a patch / SDK errors reported (applied + unpatched)"),
        Kpi("sdk_adoption", percent(f.developers_enabled, f.developers_known), "%", f.developers_enabled,
            f.developers_known, "developers whose SDK called self-heal / those plus live developer tokens"),
    ]


def kpi_table(figures: WindowFigures) -> Table:
    return Table(KPI_COLUMNS, [k.row() for k in kpis(figures)])


# --- the daily checklist -----------------------------------------------------------------------

@dataclass(frozen=True)
class Alert:
    name: str
    state: str
    labels: dict[str, str] = field(default_factory=dict)


def firing_alerts(answer: dict, *, match: str) -> list[Alert]:
    """Firing alerts whose name matches `match` (a regex) in a Prometheus `/api/v1/alerts` answer."""
    if answer.get("status") != "success":
        raise ValueError(f"Prometheus answered {answer.get('status')!r}: {answer.get('error', '')}")
    pattern = re.compile(match, re.I)
    alerts = [Alert(name=a.get("labels", {}).get("alertname", ""), state=a.get("state", ""),
                    labels=a.get("labels", {})) for a in answer.get("data", {}).get("alerts", [])]
    return [a for a in alerts if a.state == "firing" and pattern.search(a.name)]


@dataclass(frozen=True)
class ChecklistInput:
    window: datetime.timedelta
    figures: WindowFigures
    busy_patches: list[tuple[str, str, int]]        # (id, description, applications) above the threshold
    new_patterns: list[tuple[str, str, int]]        # (sdk_language, error_pattern, occurrences)
    alerts: list[Alert] | None                      # None: Prometheus not asked
    alerts_error: str | None = None                 # Prometheus asked and unreachable / refused
    min_success_rate: float = 90.0
    max_rollback_rate: float = 10.0
    review_threshold: int = 100


@dataclass(frozen=True)
class ChecklistItem:
    item: str
    figure: str
    threshold: str
    status: str
    detail: str = ""

    def row(self) -> tuple:
        return (self.item, self.figure, self.threshold, self.status, self.detail)


CHECKLIST_COLUMNS = ("item", "figure", "threshold", "status", "detail")


def _rate_item(item: str, numerator: int, denominator: int, *, above: float | None = None,
               below: float | None = None, what: str) -> ChecklistItem:
    threshold = f"> {above:g} %" if above is not None else f"< {below:g} %"
    rate = percent(numerator, denominator)
    if rate is None:
        return ChecklistItem(item, "no applications", threshold, PASS, f"no {what} in the window: nothing to fail")
    ok = rate > above if above is not None else rate < below  # type: ignore[operator]
    return ChecklistItem(item, f"{rate:.2f} %", threshold, PASS if ok else FAIL, f"{numerator} / {denominator}")


def _listing(entries: Iterable[str], limit: int = 5) -> str:
    entries = list(entries)
    more = f"; +{len(entries) - limit} more" if len(entries) > limit else ""
    return "; ".join(entries[:limit]) + more


def checklist(data: ChecklistInput) -> list[ChecklistItem]:
    """The runbook's daily checklist, item by item; an item fails when someone must act on it."""
    f, window = data.figures, describe_window(data.window)
    items = [
        _rate_item(f"success rate > {data.min_success_rate:g} % ({window})", f.successful, f.applied,
                   above=data.min_success_rate, what="applications"),
        _rate_item(f"rollback rate < {data.max_rollback_rate:g} % ({window})", f.rollbacks, f.applied,
                   below=data.max_rollback_rate, what="applications"),
    ]
    busy = data.busy_patches
    items.append(ChecklistItem(
        f"patches applied > {data.review_threshold} times ({window}) reviewed", _count(len(busy), "patch", "patches"),
        "none to review", FAIL if busy else PASS,
        _listing(f"{pid} {desc!r}: {count}" for pid, desc, count in busy) if busy else ""))
    new = data.new_patterns
    items.append(ChecklistItem(
        f"new error patterns without a patch ({window})", _count(len(new), "pattern"), "none",
        FAIL if new else PASS,
        _listing(f"{lang} {pattern!r}: {count}" for lang, pattern, count in new) if new else ""))
    if data.alerts_error is not None:
        items.append(ChecklistItem("Prometheus alerts", "unknown", "none firing", FAIL,
                                   f"could not ask Prometheus: {data.alerts_error}"))
    elif data.alerts is None:
        items.append(ChecklistItem("Prometheus alerts", "not checked", "none firing", NOT_CHECKED,
                                   "no --prometheus-url given"))
    else:
        items.append(ChecklistItem("Prometheus alerts", f"{len(data.alerts)} firing", "none firing",
                                   FAIL if data.alerts else PASS,
                                   _listing(sorted({a.name for a in data.alerts}))))
    items.append(ChecklistItem("weekly export for analysis", "not checked", "once a week", NOT_CHECKED,
                               "selfheal report export > patch_applications.csv"))
    return items


def checklist_table(items: list[ChecklistItem]) -> Table:
    return Table(CHECKLIST_COLUMNS, [item.row() for item in items])


def checklist_failed(items: list[ChecklistItem]) -> bool:
    return any(item.status == FAIL for item in items)
