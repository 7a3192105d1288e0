"""The runbook's Prometheus metrics, on a registry of the API's own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Per-patch series are bounded: beyond this many distinct ids, outcomes count under "other".
MAX_PATCH_LABELS = 10_000


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.patches_total = Counter("self_heal_patches", "Patches applied by SDKs (reported).",
                                     registry=self.registry)
        self.rollbacks_total = Counter("self_heal_rollbacks", "Rollbacks triggered by SDKs (reported).",
                                       registry=self.registry)
        self.success_rate = Gauge("self_heal_success_rate",
                                  "Share of reported patch applications that succeeded, since start.",
                                  registry=self.registry)
        self.patch_applications = Counter("self_heal_patch_applications", "Applications reported per patch.",
                                          ["patch_id"], registry=self.registry)
        self.patch_failures = Counter("self_heal_patch_failures", "Failed applications reported per patch.",
                                      ["patch_id"], registry=self.registry)
        self.lookups = Counter("self_heal_lookups", "Self-heal lookups by outcome.", ["outcome"],
                               registry=self.registry)
        self.request_seconds = Histogram("self_heal_api_request_seconds", "Registry API request latency.",
                                         ["route", "method"], registry=self.registry,
                                         buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1))
        self.reports_buffered = Gauge("self_heal_reports_buffered", "Reports waiting to be written.",
                                      registry=self.registry)
        self._labelled: set[str] = set()
        self._applied = self._succeeded = 0

    def _label(self, patch_id: str) -> str:
        if patch_id in self._labelled or len(self._labelled) < MAX_PATCH_LABELS:
            self._labelled.add(patch_id)
            return patch_id
        return "other"

    def record_outcome(self, *, patch_id: str | None, applied: bool, success: bool, rollback: bool) -> None:
        if not applied or patch_id is None:
            return
        label = self._label(patch_id)
        self.patches_total.inc()
        self.patch_applications.labels(patch_id=label).inc()
        if not success:
            self.patch_failures.labels(patch_id=label).inc()
        if rollback:
            self.rollbacks_total.inc()
        self._applied += 1
        self._succeeded += success
        self.success_rate.set(self._succeeded / self._applied)
