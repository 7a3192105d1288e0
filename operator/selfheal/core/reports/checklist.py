"""The runbook's daily checklist: each item with its figure and a verdict (pure logic)."""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass, field

from selfheal.core.reports.kpis import WindowFigures, percent
from selfheal.core.reports.table import Table
from selfheal.core.reports.windows import describe_window

PASS, FAIL, NOT_CHECKED = "pass", "fail", "not checked"


@dataclass(frozen=True)
class Alert:
    name: str
    state: str
    labels: dict[str, str] = field(default_factory=dict)


def _count(n: int, noun: str, plural: str | None = None) -> str:
    return f"{n} {noun if n == 1 else (plural or noun + 's')}"


@dataclass(frozen=True)
class ChecklistInput:
    window: datetime.timedelta
    figures: WindowFigures
    busy_patches: list[tuple[str, str, int]]  # (id, description, applications) above the threshold
    new_patterns: list[tuple[str, str, int]]  # (sdk_language, error_pattern, occurrences)
    alerts: list[Alert] | None  # None: Prometheus not asked
    alerts_error: str | None = None  # Prometheus asked and unreachable / refused
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

    def row(self) -> tuple[object, ...]:
        return (self.item, self.figure, self.threshold, self.status, self.detail)


CHECKLIST_COLUMNS = ("item", "figure", "threshold", "status", "detail")


def _rate_item(
    item: str, numerator: int, denominator: int, *, above: float | None = None, below: float | None = None, what: str
) -> ChecklistItem:
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
        _rate_item(
            f"success rate > {data.min_success_rate:g} % ({window})",
            f.successful,
            f.applied,
            above=data.min_success_rate,
            what="applications",
        ),
        _rate_item(
            f"rollback rate < {data.max_rollback_rate:g} % ({window})",
            f.rollbacks,
            f.applied,
            below=data.max_rollback_rate,
            what="applications",
        ),
    ]
    busy = data.busy_patches
    items.append(
        ChecklistItem(
            f"patches applied > {data.review_threshold} times ({window}) reviewed",
            _count(len(busy), "patch", "patches"),
            "none to review",
            FAIL if busy else PASS,
            _listing(f"{pid} {desc!r}: {count}" for pid, desc, count in busy) if busy else "",
        )
    )
    new = data.new_patterns
    items.append(
        ChecklistItem(
            f"new error patterns without a patch ({window})",
            _count(len(new), "pattern"),
            "none",
            FAIL if new else PASS,
            _listing(f"{lang} {pattern!r}: {count}" for lang, pattern, count in new) if new else "",
        )
    )
    if data.alerts_error is not None:
        items.append(
            ChecklistItem(
                "Prometheus alerts", "unknown", "none firing", FAIL, f"could not ask Prometheus: {data.alerts_error}"
            )
        )
    elif data.alerts is None:
        items.append(
            ChecklistItem("Prometheus alerts", "not checked", "none firing", NOT_CHECKED, "no --prometheus-url given")
        )
    else:
        items.append(
            ChecklistItem(
                "Prometheus alerts",
                f"{len(data.alerts)} firing",
                "none firing",
                FAIL if data.alerts else PASS,
                _listing(sorted({a.name for a in data.alerts})),
            )
        )
    items.append(
        ChecklistItem(
            "weekly export for analysis",
            "not checked",
            "once a week",
            NOT_CHECKED,
            "selfheal report export > patch_applications.csv",
        )
    )
    return items


def checklist_table(items: list[ChecklistItem]) -> Table:
    return Table(CHECKLIST_COLUMNS, [item.row() for item in items])


def checklist_failed(items: list[ChecklistItem]) -> bool:
    return any(item.status == FAIL for item in items)
