"""The guard's verdicts on simulated traffic: a numpy model, and the real guard replayed on the same traces.

A trace is each patch's counts per 5-second bucket (applications, failures, rollbacks) after 24
hourly buckets of history. Both sides evaluate every patch once per bucket, at its last second
(the bucket complete), and fold into the Regression rule's CUSUMs the bucket that settled three
buckets earlier, as services/guard_cycle.py does with SETTLE_SECONDS = 10 and one cycle per bucket:

- `Model` steps all patches at once with numpy: the same windows (fine 5 s buckets under 120 s,
  minute buckets above, the current one included), Prometheus `for:`, the early cut-off's Wilson
  bound (stats.wilson_core itself), the Regression rule's design and CUSUM (cusum.py's formulas).
- `replay` runs the real thing patch by patch: core.guard.evaluate.evaluate, regression.advance and
  regression.judge, with windows cut by registry.guard_store._window_start and 24 h baselines as
  registry.guard_store.read_baselines sums them. tests/guard/test_detection_model.py holds the two
  to identical verdicts on identical traces, so the bench may run the fast one at scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from selfheal.core.guard import cusum, regression
from selfheal.core.guard.cusum import RESTING
from selfheal.core.guard.evaluate import NO_DATA, Counts, evaluate
from selfheal.core.guard.regression import Baseline
from selfheal.core.guard.rules import (
    COARSE_BUCKET_SECONDS,
    FINE_BUCKET_SECONDS,
    GuardSettings,
    RegressionSettings,
    bucket_seconds,
)
from selfheal.core.guard.stats import wilson_core, z_score
from selfheal.registry.guard_store import _window_start

STEP = FINE_BUCKET_SECONDS
PER_MINUTE = COARSE_BUCKET_SECONDS // STEP
PER_HOUR = 3600 // STEP
LAG = 3  # the bucket folded at a cycle: (now - 10 s settle) // 5 s, exclusive -> three buckets back
EPOCH = 1_800_000_000 // 3600 * 3600  # bucket 0 starts on an hour
NONE, WARN, DEACTIVATE = 0, 1, 2


@dataclass
class Traffic:
    """Per patch: applications per second, healthy failure and rollback rates (a rollback is a
    failed application), and from `start` (a bucket index) the failure rate times `factor`."""

    rate: np.ndarray
    failure: np.ndarray
    rollback: np.ndarray
    factor: np.ndarray | None = None
    start: np.ndarray | None = None

    @property
    def size(self) -> int:
        return len(self.rate)

    def history(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """24 healthy hours before bucket 0: applications and failures per hour, [24, patches]."""
        total = rng.poisson(self.rate * 3600, (24, self.size))
        return total, rng.binomial(total, self.failure)

    def bucket(self, rng: np.random.Generator, index: int) -> np.ndarray:
        """[3, patches]: applications, failures, rollbacks in bucket `index` (draws only where there are calls)."""
        p = self.failure
        if self.factor is not None and self.start is not None:
            p = np.where(index >= self.start, np.minimum(self.failure * self.factor, 1.0), self.failure)
        out = np.zeros((3, self.size), np.int64)
        out[0] = rng.poisson(self.rate * STEP)
        (calls,) = np.nonzero(out[0])
        out[1, calls] = rng.binomial(out[0, calls], p[calls])
        (failed,) = np.nonzero(out[1])
        out[2, failed] = rng.binomial(out[1, failed], self.rollback_share[failed])
        return out

    @property
    def rollback_share(self) -> np.ndarray:
        """The share of failed applications that roll back."""
        if getattr(self, "_share", None) is None:
            self._share = np.where(self.failure > 0, self.rollback / np.maximum(self.failure, 1e-12), 0.0)
        return self._share


@dataclass
class Detector:
    """One Regression rule's CUSUMs over all patches, and when and after how many samples it fired."""

    settings: RegressionSettings
    size: int
    ratios: tuple[float, ...] = ()
    bank: np.ndarray = field(init=False)
    alarmed: np.ndarray = field(init=False)
    first: np.ndarray = field(init=False)  # bucket index of the first cycle it fired at (-1: never)
    samples: np.ndarray = field(init=False)  # samples folded from the regression's start to then

    def __post_init__(self) -> None:
        self.ratios = regression.ratios(self.settings)
        self.bank = np.zeros((len(self.ratios), self.size))
        self.alarmed = np.zeros(self.size, bool)
        self.first = np.full(self.size, -1)
        self.samples = np.zeros(self.size, np.int64)

    def design(self, base_total: np.ndarray, base_failures: np.ndarray, hours: np.ndarray):
        """regression.design for every patch: (valid, h, weight of a failure [K, n], of a success [K, n])."""
        s = self.settings
        valid = (base_total >= max(s.min_baseline_samples, 1)) & (base_failures < base_total) & s.enabled
        p0 = np.maximum(s.floor, base_failures / np.maximum(base_total, 1))
        per_day = np.where(hours > 0, base_total * 24.0 / np.where(hours > 0, hours, 1), 0.0)
        h = cusum.threshold(samples_per_day=per_day, budget_days=s.budget_patch_days, log=np.log, maximum=np.maximum)
        h = h + math.log(len(self.ratios))
        p0 = np.where(valid, p0, 0.5)  # any probability: the invalid ones are reset, not folded
        alternatives = np.array([cusum.alternative(p0, r, minimum=np.minimum) for r in self.ratios])
        on_failure, on_success = cusum.weights(p0, alternatives, log=np.log)
        return valid, h, on_failure, on_success

    def fold(self, plan, total: np.ndarray, failures: np.ndarray) -> None:
        """regression.advance on one bucket for the patches that had one (total > 0)."""
        valid, h, on_failure, on_success = plan
        (reset,) = np.nonzero((total > 0) & ~valid)
        self.bank[:, reset], self.alarmed[reset] = 0.0, False
        (at,) = np.nonzero((total > 0) & valid)
        n, f, h = total[at].astype(float), failures[at].astype(float), h[at]
        a, b, bank, alarmed = on_failure[:, at], on_success[:, at], self.bank[:, at], self.alarmed[at]
        ceiling = regression.CEILING * h
        if len(self.ratios) == 1:  # cusum.fold: S += f a + (n - f) b; reset at <= 0; capped after the alarm test
            s = bank[0] + (f * a[0] + (n - f) * b[0])
            rest = s <= 0.0
            self.alarmed[at] = ~rest & (alarmed | (s > h))
            self.bank[0, at] = np.where(rest, 0.0, np.minimum(s, ceiling))
        else:  # cusum.fold_bank: each S_k = min(max(0, S_k + f a_k + (n - f) b_k), ceiling); reset when all at 0
            new = np.minimum(np.maximum(0.0, bank + f * a + (n - f) * b), ceiling)
            top = new.max(0)
            rest = top <= 0.0
            self.alarmed[at] = ~rest & (alarmed | (top > h))
            self.bank[:, at] = np.where(rest, 0.0, new)

    def firing(self, plan) -> np.ndarray:
        """regression.judge(...).firing, where guard_cycle judges (S > 0 or alarmed)."""
        valid, h = plan[0], plan[1]
        return valid & (self.alarmed | (self.bank.max(0) > h))


class Model:
    """The guard over all patches of `traffic`, one evaluation per 5-second bucket."""

    def __init__(self, *, settings: GuardSettings, detectors: dict[str, RegressionSettings], traffic: Traffic) -> None:
        self.settings, self.traffic = settings, traffic
        n = traffic.size
        self.detectors = {name: Detector(s, n) for name, s in detectors.items()}
        self.rules = settings.rules
        self.windows = sorted(settings.windows())
        self.fine_windows = {w: w // STEP for w in self.windows if bucket_seconds(w) == STEP}
        self.coarse_windows = {w: w // COARSE_BUCKET_SECONDS for w in self.windows if bucket_seconds(w) != STEP}
        self.fine_len = max([*self.fine_windows.values(), LAG]) + 1
        self.minutes = max([*self.coarse_windows.values(), 1]) + 1
        self.pending = np.full((len(self.rules), n), np.nan)
        self.threshold_first = np.full(n, -1)  # first deactivation by a threshold rule (bucket index)
        self.threshold_cause = np.full(n, -1)  # its rule's index, + len(rules) when by the early cut-off
        self.folded_since_start = np.zeros(n, np.int64)

    def _baseline(self, hourly: np.ndarray, hour: int):
        """read_baselines at an hour: sums over the 24 hours before it, and the hours since the first with data."""
        rows = hourly[hour : hour + 24]  # hourly[0..23] is the history, hour h of the trace is hourly[24 + h]
        total, failures = rows[:, 0].sum(0), rows[:, 1].sum(0)
        has = rows[:, 0] > 0
        first = np.where(has.any(0), has.argmax(0), 24)
        return total, failures, (24 - first).astype(float)

    def run(self, steps: int, rng: np.random.Generator, *, record: bool = False) -> dict[str, np.ndarray]:
        """Simulate `steps` buckets. Windows are running sums (the fine ones over a ring of buckets,
        the minute ones over a ring of minutes plus the current one); with `record`, the trace and
        every verdict are kept for the comparison with the real guard."""
        settings, n = self.settings, self.traffic.size
        total0, failures0 = self.traffic.history(rng)
        hourly = np.zeros((24 + steps // PER_HOUR + 2, 2, n), np.int64)
        hourly[:24, 0], hourly[:24, 1] = total0, failures0
        z = z_score(confidence=settings.early_confidence)
        early_min = max(settings.early_min_samples, settings.min_samples)
        fine = np.zeros((self.fine_len, 3, n), np.int64)
        minutes = np.zeros((self.minutes, 3, n), np.int64)  # complete minutes
        current = np.zeros((3, n), np.int64)  # the minute in progress
        sums = {w: np.zeros((3, n), np.int64) for w in self.windows}  # fine: whole window; coarse: its complete minutes
        plans: dict[str, tuple] = {}
        trace = np.zeros((steps, 3, n), np.int64) if record else None
        actions = np.zeros((len(self.detectors), steps, n), np.int8) if record else None
        causes = np.full((len(self.detectors), steps, n), -1, np.int8) if record else None
        start = self.traffic.start if self.traffic.start is not None else np.zeros(n, np.int64)
        early_rules = [
            (r, rule, sorted({*settings.early_windows_seconds, rule.window_seconds}))
            for r, rule in enumerate(self.rules)
            if rule.is_rate and rule.action == "deactivate" and settings.early_cutoff
        ]
        for index in range(steps):
            now = EPOCH + index * STEP + (STEP - 1)
            bucket = self.traffic.bucket(rng, index)
            if record:
                trace[index] = bucket
            m = index // PER_MINUTE
            if index % PER_MINUTE == 0 and index > 0:  # minute m - 1 is complete
                minutes[(m - 1) % self.minutes] = current
                for w, k in self.coarse_windows.items():  # complete minutes m - k + 1 .. m - 1
                    sums[w] += current
                    if m - k >= 0:
                        sums[w] -= minutes[(m - k) % self.minutes]
                current = np.zeros((3, n), np.int64)
            current += bucket
            for w, k in self.fine_windows.items():
                sums[w] += bucket
                if index >= k:
                    sums[w] -= fine[(index - k) % self.fine_len]
            fine[index % self.fine_len] = bucket
            hourly[24 + index // PER_HOUR] += bucket[:2]
            if index % PER_HOUR == 0:
                base = self._baseline(hourly, index // PER_HOUR)
                plans = {name: d.design(*base) for name, d in self.detectors.items()}
            # The Regression rule folds the bucket that settled.
            if index >= LAG:
                folded = fine[(index - LAG) % self.fine_len]
                self.folded_since_start += np.where(index - LAG >= start, folded[0], 0)
                for name, d in self.detectors.items():
                    d.fold(plans[name], folded[0], folded[1])
            windows = {w: sums[w] if w in self.fine_windows else sums[w] + current for w in self.windows}
            seen = np.zeros(n, bool)
            for w in self.windows:
                seen |= windows[w][0] > 0
            # The threshold rules: Prometheus `for:`, then the early cut-off where `for:` does not fire.
            fired_by = np.full(n, -1)
            warned_by = np.full(n, -1)
            early_by = np.zeros(n, bool)
            for r, rule in enumerate(self.rules):
                t, f, rb = windows[rule.window_seconds]
                if rule.metric == "volume":
                    holds = t * 60.0 / rule.window_seconds > rule.threshold
                else:
                    events = f if rule.metric == "failure" else rb
                    holds = (t >= settings.min_samples) & (events / np.maximum(t, 1) > rule.threshold)
                pending = self.pending[r]
                since = np.where(holds, np.where(np.isnan(pending), now, pending), np.nan)
                firing = holds & (now - since >= rule.for_seconds)
                self.pending[r] = since
                target = fired_by if rule.action == "deactivate" else warned_by
                target[(target < 0) & firing] = r
            for r, rule, early_windows in early_rules:
                for w in early_windows:
                    et, ef, er = windows[w]
                    ev = ef if rule.metric == "failure" else er
                    # Wilson's interval holds the rate: only windows whose rate is above can have a bound above.
                    (candidates,) = np.nonzero((et >= early_min) & (ev / np.maximum(et, 1) > rule.threshold))
                    if not len(candidates):
                        continue
                    lower = wilson_core(ev[candidates], et[candidates], z)
                    hit = candidates[(lower > rule.threshold) & (fired_by[candidates] != r)]
                    # `for:` did not fire for this rule here: it fires early, pending from now if it was not.
                    self.pending[r, hit] = np.where(np.isnan(self.pending[r, hit]), now, self.pending[r, hit])
                    first = (fired_by[hit] < 0) | (fired_by[hit] > r)
                    early_by[hit] = np.where(first, True, early_by[hit])
                    fired_by[hit] = np.where(first, r, fired_by[hit])
            newly = (fired_by >= 0) & (self.threshold_first < 0)
            self.threshold_first[newly] = index
            self.threshold_cause[newly] = fired_by[newly] + np.where(early_by[newly], len(self.rules), 0)
            for k, (name, d) in enumerate(self.detectors.items()):
                fires = seen & d.firing(plans[name])
                newly = fires & (d.first < 0)
                d.first[newly] = index
                d.samples[newly] = self.folded_since_start[newly]
                if record:
                    deact = fired_by >= 0
                    reg = len(self.rules)
                    reg_deact = fires & d.settings.deactivate
                    reg_warn = fires & ~d.settings.deactivate
                    action = np.where(deact | reg_deact, DEACTIVATE, np.where((warned_by >= 0) | reg_warn, WARN, NONE))
                    cause = np.where(
                        deact,
                        fired_by,
                        np.where(reg_deact, reg, np.where(warned_by >= 0, warned_by, np.where(reg_warn, reg, -1))),
                    )
                    actions[k, index] = np.where(seen, action, NONE)
                    causes[k, index] = np.where(seen, cause, -1)
        out: dict[str, np.ndarray] = {"history": np.stack([total0, failures0])}
        if record:
            out["trace"], out["actions"], out["causes"] = trace, actions, causes
        return out


# ------------------------------------------------------------------------------ the real guard
def replay(*, settings: GuardSettings, trace: np.ndarray, history: np.ndarray, patch: int) -> tuple[list, list]:
    """The real guard on one patch's trace: per bucket, the action and the cause's rule index
    (as Model numbers them); stops at the first deactivation, as the patch is then off."""
    steps = trace.shape[0]
    series = trace[:, :, patch].tolist()
    hours = [(int(history[0, h, patch]), int(history[1, h, patch])) for h in range(24)]
    for index in range(0, steps, PER_HOUR):
        chunk = series[index : index + PER_HOUR]
        hours.append((sum(b[0] for b in chunk), sum(b[1] for b in chunk)))
    prefix = [(0, 0, 0)]
    for t, f, r in series:
        a, b, c = prefix[-1]
        prefix.append((a + t, b + f, c + r))
    names = [rule.name for rule in settings.rules]
    state, pending = RESTING, {}
    actions, causes = [], []
    for index in range(steps):
        now = EPOCH + index * STEP + (STEP - 1)
        hour = index * STEP // 3600
        rows = hours[hour : hour + 24]
        with_data = [i for i, (t, _) in enumerate(rows) if t > 0]
        baseline = Baseline(
            sum(t for t, _ in rows), sum(f for _, f in rows), float(24 - with_data[0]) if with_data else 0.0
        )
        if index >= LAG and series[index - LAG][0] > 0:
            t, f, _ = series[index - LAG]
            state = regression.advance(settings=settings.regression, baseline=baseline, state=state, buckets=[(t, f)])
        windows = {}
        for w in settings.windows():
            first = (_window_start(now, w).timestamp() - EPOCH) // STEP  # the first bucket in the window
            lo = max(int(first), 0)
            a, b, c = (x - y for x, y in zip(prefix[index + 1], prefix[lo], strict=True))
            windows[w] = Counts(a, b, c)
        seen = any(c.total for c in windows.values())
        if not seen and not pending:
            actions.append(NONE)
            causes.append(-1)
            continue
        outcome = None
        if seen and settings.regression.enabled and (state.alarmed or state.statistic > 0):
            outcome = regression.judge(settings=settings.regression, baseline=baseline, state=state)
        verdict = evaluate(
            settings=settings, windows=windows if seen else {0: NO_DATA}, pending=pending, now=now, regression=outcome
        )
        pending = verdict.pending
        action = {"none": NONE, "warn": WARN, "deactivate": DEACTIVATE}[verdict.action]
        cause = verdict.cause.rule.name if verdict.cause else None
        actions.append(action)
        causes.append(-1 if cause is None else names.index(cause) if cause in names else len(names))
        if action == DEACTIVATE:
            break
    return actions, causes


def with_regression(settings: GuardSettings, regression_settings: RegressionSettings) -> GuardSettings:
    return replace(settings, regression=regression_settings)
