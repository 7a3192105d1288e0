"""The guard's Prometheus metrics, served by `selfheal operator --metrics-port`."""

from __future__ import annotations

from prometheus_client import Counter, Enum, Gauge, Histogram, Info, start_http_server

from selfheal.core.build import version
from selfheal.core.guard.rules import DEFAULT_RULES, REGRESSION_RULE

STATES = ["Healthy", "Inconclusive", "Pending", "Warning", "Firing", "Deactivated", "Disabled"]
_PATCH = ["namespace", "name", "patch_id"]

deactivations = Counter(
    "selfheal_guard_deactivations_total", "Patches switched off by the guard or a kill switch", ["reason", "rule"]
)
warnings = Counter("selfheal_guard_warnings_total", "Guard warnings (rules configured to warn only)", ["rule"])
cycle_seconds = Histogram(
    "selfheal_guard_cycle_seconds",
    "Duration of one evaluation cycle of all patches",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
cycle_errors = Counter("selfheal_guard_cycle_errors_total", "Evaluation cycles that gave no verdict", ["kind"])
applications_24h = Gauge("selfheal_guard_applications_24h", "Applications of the patch in the last 24 hours", _PATCH)
success_ratio = Gauge("selfheal_guard_success_ratio", "Successful applications / applications, last 24 hours", _PATCH)
rollback_ratio = Gauge(
    "selfheal_guard_rollback_ratio", "Rolled back applications / applications, last 24 hours", _PATCH
)
state = Enum("selfheal_guard_state", "The guard's verdict on the patch", _PATCH, states=STATES)
# The operator's health, for the alerts in manifests/components/monitoring/prometheusrule.yaml.
sync_failures = Counter(
    "selfheal_sync_failures_total", "Registry writes of a SelfHealPatch that failed (retried)", ["reason"]
)
registry_up = Gauge("selfheal_registry_up", "1 when the last guard cycle reached the registry, else 0")
Info("selfheal_build", "The selfheal build serving these metrics.").info({"version": version()})
# Series present from the start: increase() misses a counter's first sample, so an alert on the
# first auto-deactivation needs the zero before it.
for _name in [rule.name for rule in DEFAULT_RULES] + [REGRESSION_RULE]:  # volume and regression: when configured
    deactivations.labels(reason="AutoDeactivated", rule=_name)


def serve(*, port: int) -> None:
    if port:
        start_http_server(port)


def record_patch(
    *,
    namespace: str,
    name: str,
    patch_id: str,
    guard_state: str,
    total: int,
    success: float | None,
    rollback: float | None,
) -> None:
    key = (namespace, name, patch_id)
    series = _patch_series.get(key)
    if series is None:  # `labels()` checks and locks on every call: ten thousand patches every 15 s
        series = _patch_series[key] = (
            applications_24h.labels(*key),
            success_ratio.labels(*key),
            rollback_ratio.labels(*key),
            state.labels(*key),
        )
    applications, success_series, rollback_series, state_series = series
    applications.set(total)
    success_series.set(float("nan") if success is None else success)
    rollback_series.set(float("nan") if rollback is None else rollback)
    state_series.state(guard_state.split(":")[0])


_patch_series: dict[tuple[str, str, str], tuple[Gauge, Gauge, Gauge, Enum]] = {}
