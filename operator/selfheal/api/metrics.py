"""The runbook's Prometheus metrics, on a registry of the API's own.

The two per-patch families can hold 10,000 series each: they are plain counts here, rendered by
one string join in the text format (prometheus_client renders each sample, plus a `_created`
twin per series, one by one).

The figures touched by every lookup (request latency, hits and misses) are plain numbers too,
collected at scrape time, so a lookup takes no lock. The API runs on one event loop thread, so
nothing races them.
"""

from __future__ import annotations

import itertools
from bisect import bisect_left

from prometheus_client import CollectorRegistry, Counter, Gauge, Info, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

from selfheal.core.build import version

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
_BUCKET_LABELS = (*(repr(bound) for bound in LATENCY_BUCKETS), "+Inf")  # the `le` of each count


class LatencyTimer:
    """One route's latency histogram: a count per bucket (the last one is +Inf) and the sum."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.total += seconds


class _HotPathCollector:
    """Renders the lock-free figures of `ApiMetrics` as ordinary metric families at scrape time."""

    def __init__(self, metrics: ApiMetrics) -> None:
        self.metrics = metrics

    def collect(self):
        latency = HistogramMetricFamily(
            "selfheal_api_request_seconds", "Registry API request latency.", labels=["route", "method"]
        )
        for (route, method), timer in self.metrics.timers.items():
            latency.add_metric(
                [route, method], list(zip(_BUCKET_LABELS, itertools.accumulate(timer.counts))), timer.total
            )
        lookups = CounterMetricFamily("selfheal_api_lookups", "Self-heal lookups by outcome.", labels=["outcome"])
        lookups.add_metric(["hit"], self.metrics.lookup_hits)
        lookups.add_metric(["miss"], self.metrics.lookup_misses)
        return [latency, lookups]


# The runbook reads `self_heal_success_rate` here. A ratio one pod computed since it started means
# nothing across pods and restarts, so the figure is Prometheus's recording rule over the counters
# below (manifests/components/monitoring/prometheusrule.yaml); this process only describes it.
SUCCESS_RATE_HELP = (
    "# HELP self_heal_success_rate Share of patch applications that succeeded, fleet-wide over 5 minutes: "
    "a Prometheus recording rule, 1 - rate(self_heal_patch_failures_total) / "
    "rate(self_heal_patch_applications_total); query Prometheus for its value.\n"
    "# TYPE self_heal_success_rate gauge\n"
)

# Per-patch series are bounded: beyond this many distinct ids, outcomes count under "other".
MAX_PATCH_LABELS = 10_000


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.patches_total = Counter("self_heal_patches", "Patches applied by SDKs (reported).", registry=self.registry)
        self.rollbacks_total = Counter(
            "self_heal_rollbacks", "Rollbacks triggered by SDKs (reported).", registry=self.registry
        )
        self.patch_applications: dict[str, int] = {}
        self.patch_failures: dict[str, int] = {}
        self.outcomes_buffered = Gauge(
            "selfheal_api_outcomes_buffered", "Outcomes SDKs reported, waiting to be written.", registry=self.registry
        )
        Info("selfheal_build", "The selfheal build serving these metrics.", registry=self.registry).info(
            {"version": version()}
        )
        self.lookup_hits = self.lookup_misses = 0
        self.timers: dict[tuple[str, str], LatencyTimer] = {}
        self.registry.register(_HotPathCollector(self))
        self._labelled: set[str] = set()

    def request_timer(self, *, route: str, method: str) -> LatencyTimer:
        """The latency histogram of one route, resolved once at start rather than per request."""
        return self.timers.setdefault((route, method), LatencyTimer())

    def _label(self, patch_id: str) -> str:
        if patch_id in self._labelled or len(self._labelled) < MAX_PATCH_LABELS:
            self._labelled.add(patch_id)
            return patch_id
        return "other"

    def record_outcomes(self, applications) -> None:
        """Count a batch of reported applications (rows of sdk_patch_applications)."""
        applied = rollbacks = 0
        applications_by_patch, failures_by_patch = self.patch_applications, self.patch_failures
        for row in applications:
            if not row.patch_applied or row.patch_id is None:
                continue
            label = self._label(row.patch_id)
            applied += 1
            applications_by_patch[label] = applications_by_patch.get(label, 0) + 1
            if not row.success:
                failures_by_patch[label] = failures_by_patch.get(label, 0) + 1
            rollbacks += row.rollback_triggered
        if not applied:
            return
        self.patches_total.inc(applied)
        if rollbacks:
            self.rollbacks_total.inc(rollbacks)

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric of the API."""
        return (
            generate_latest(self.registry)
            + SUCCESS_RATE_HELP.encode()
            + "".join(
                _counter_family(name, text, counts)
                for name, text, counts in (
                    ("self_heal_patch_applications_total", "Applications reported per patch.", self.patch_applications),
                    ("self_heal_patch_failures_total", "Failed applications reported per patch.", self.patch_failures),
                )
            ).encode("utf-8")
        )


def _counter_family(name: str, text: str, counts: dict[str, int]) -> str:
    # Patch ids match ^[A-Za-z0-9._:-]{1,64}$ (registry CHECK), so label values need no escaping.
    lines = [f"# HELP {name} {text}\n# TYPE {name} counter\n"]
    lines.extend(f'{name}{{patch_id="{patch_id}"}} {count}.0\n' for patch_id, count in counts.items())
    return "".join(lines)
