"""The runbook's KPIs from the counts of one window (docs/runbook.en.md, "KPIs", defines each)."""

from __future__ import annotations

from dataclasses import dataclass

from selfheal.core.reports.table import Table


@dataclass(frozen=True)
class WindowFigures:
    """Counts over one window of sdk_patch_applications (see selfheal.registry.reports)."""

    errors: int  # every row: an SDK error that reached the registry
    applied: int  # patch_applied: a patch was served and applied
    successful: int  # applied and the retried call succeeded
    rollbacks: int  # applied and rolled back
    developers_enabled: int  # distinct developers with at least one row (their SDK calls self-heal)
    developers_known: int  # those, plus holders of a live `developer` token
    repairs_measured: int = 0  # patches first applied with success in the window, tied to earlier misses
    patches_fixed: int = 0  # patches first applied with success in the window
    mttr_seconds: float | None = None


@dataclass(frozen=True)
class Kpi:
    kpi: str
    value: float | None
    unit: str
    numerator: float | None
    denominator: float | None
    basis: str

    def row(self) -> tuple[object, ...]:
        return (
            self.kpi,
            None if self.value is None else round(self.value, 4),
            self.unit,
            self.numerator,
            self.denominator,
            self.basis,
        )


KPI_COLUMNS = ("kpi", "value", "unit", "numerator", "denominator", "basis")


def percent(numerator: int, denominator: int) -> float | None:
    return None if denominator == 0 else 100.0 * numerator / denominator


def kpis(figures: WindowFigures) -> list[Kpi]:
    """The runbook's five KPIs; docs/runbook.en.md ("KPIs") defines each."""
    f = figures
    return [
        Kpi(
            "application_rate",
            percent(f.successful, f.applied),
            "%",
            f.successful,
            f.applied,
            "applications that succeeded / patches applied",
        ),
        Kpi(
            "rollback_rate",
            percent(f.rollbacks, f.applied),
            "%",
            f.rollbacks,
            f.applied,
            "applications rolled back / patches applied",
        ),
        Kpi(
            "mttr",
            f.mttr_seconds,
            "s",
            f.repairs_measured,
            f.patches_fixed,
            "mean of (first successful application of a patch - first unpatched occurrence of its "
            "error signature before it), over patches first healed in the window; numerator: repairs "
            "measured, denominator: patches first healed",
        ),
        Kpi(
            "coverage",
            percent(f.applied, f.errors),
            "%",
            f.applied,
            f.errors,
            "SDK errors answered by a patch / SDK errors reported (applied + unpatched)",
        ),
        Kpi(
            "sdk_adoption",
            percent(f.developers_enabled, f.developers_known),
            "%",
            f.developers_enabled,
            f.developers_known,
            "developers whose SDK called self-heal / those plus live developer tokens",
        ),
    ]


def kpi_table(figures: WindowFigures) -> Table:
    return Table(KPI_COLUMNS, [k.row() for k in kpis(figures)])
