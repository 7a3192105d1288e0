"""Detection quality of the guard: false deactivations on healthy traffic, delay on regressions.

Runs the guard's verdicts (bench/detection_model.py's numpy model, held identical to the real guard
by tests/guard/test_detection_model.py, and re-checked here on a sample of the same run's traces)
on simulated patches, one evaluation per 5-second bucket, 24 hours of history each:

- healthy patches per rate class, near the thresholds included (rollback 15 % vs 20 %, failure
  40 % vs 50 %): false deactivations with their 95 % upper bound per 10,000 patch-days;
- 2x, 3x, 5x, 10x regressions from 1-10 % baselines: samples from the regression's start to the
  Regression rule's alarm, missed ones counted (not caught within the run), and for 5x the ratio
  to Lorden's lower bound ln(gamma) / KL(p1 || p0) at the rule's false-alarm budget, at the median
  and per baseline decile (goal <= 1.25x).

The baseline is Page's CUSUM tuned for 3x (bank_size = 1, the rule before the bank); the new
detector is the bank of CUSUMs over a grid of ratios (core/guard/cusum.py, fold_bank). Both run
in the same simulation, on the same traces.

Usage: python bench/detection_bench.py [--healthy-patch-days 8000] [--regressed 200] [--hours 24] [--regression-hours 24]
       python bench/detection_bench.py --healthy-patch-days 120000 --regressed 1000   # large: 30,000 patch-days a class
       python bench/detection_bench.py --skip-regressions --early-confidence 0.999 0.9999999 --min-samples 100
Needs numpy (pip install -e '.[bench]').
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.detection_model import PER_HOUR, STEP, Model, Traffic, replay, with_regression  # noqa: E402
from bench.results import record  # noqa: E402
from selfheal.core.guard import cusum  # noqa: E402
from selfheal.core.guard.rules import GuardSettings, RegressionSettings  # noqa: E402

DETECTORS = {"page": RegressionSettings(bank_size=1), "bank": RegressionSettings()}
LABELS = {"page": "old: Page's CUSUM for 3x", "bank": "new: bank of CUSUMs 1.8x-8.2x"}
CLASSES = (  # name, failure rate, rollback rate (a rollback is a failed application)
    ("typical: failure 1-10 %, each rolls back", None, None),
    ("rollback 15 % (threshold 20 %)", 0.15, 0.15),
    ("failure 40 % (threshold 50 %), rollback 5 %", 0.40, 0.05),
    ("failure 40 % and rollback 15 %", 0.40, 0.15),
)
FACTORS = (2.0, 3.0, 5.0, 10.0)
GOAL_RATIO = 1.25
GOAL_PER_10K = 1.0


def upper95(events: int, exposure: float) -> float:
    """The one-sided 95 % upper bound of a Poisson rate with `events` seen over `exposure`
    (Garwood: P(X <= events; mu) = 0.05; 2.996 / exposure with none)."""
    lo, hi = 0.0, 10.0 + 10.0 * events
    for _ in range(100):
        mu = (lo + hi) / 2
        cdf = sum(math.exp(-mu + k * math.log(mu) - math.lgamma(k + 1)) for k in range(events + 1))
        lo, hi = (mu, hi) if cdf > 0.05 else (lo, mu)
    return hi / exposure


def traffic_rates(rng: np.random.Generator, n: int) -> np.ndarray:
    return 10 ** rng.uniform(-2, 1, n)  # 0.01-10 applications per second, log-uniform


def healthy(*, patch_days: float, hours: float, seed: int, settings: GuardSettings, classes: tuple = CLASSES) -> dict:
    steps = int(hours * PER_HOUR)
    per_class = int(math.ceil(patch_days / len(classes) / (hours / 24)))
    rng = np.random.default_rng(seed)
    failure, rollback = [], []
    for _, f, r in classes:
        typical = rng.uniform(0.01, 0.10, per_class)
        failure.append(typical if f is None else np.full(per_class, f))
        rollback.append(typical if r is None else np.full(per_class, r))
    traffic = Traffic(
        rate=traffic_rates(rng, per_class * len(classes)),
        failure=np.concatenate(failure),
        rollback=np.concatenate(rollback),
    )
    model = Model(settings=settings, detectors=DETECTORS, traffic=traffic)
    started = time.monotonic()
    model.run(steps, rng)
    elapsed = time.monotonic() - started
    days = per_class * hours / 24
    print(
        f"\n== healthy: {len(classes)} classes x {per_class:,} patches x {hours:g} h = {days * len(classes):,.0f}"
        f" patch-days; traffic 0.01-10 applications/s log-uniform ({elapsed:.0f} s)"
    )
    print("   false deactivations (threshold rules, early cut-off included) and Regression false alarms, per class:")
    print(
        f"   {'class':48} {'patch-days':>10} | {'deactivations':>13} {'95% upper/10k':>13} |"
        f" {'old Regression':>14} {'upper/10k':>9} | {'new Regression':>14} {'upper/10k':>9}"
    )
    figures: dict = {"classes": {}}
    totals = {"threshold": 0, "page": 0, "bank": 0, "bank_or_threshold": 0}
    for c, (name, _, _) in enumerate(classes):
        sel = slice(c * per_class, (c + 1) * per_class)
        threshold = int((model.threshold_first[sel] >= 0).sum())
        page = int((model.detectors["page"].first[sel] >= 0).sum())
        bank = int((model.detectors["bank"].first[sel] >= 0).sum())
        either = int(((model.threshold_first[sel] >= 0) | (model.detectors["bank"].first[sel] >= 0)).sum())
        for key, value in (("threshold", threshold), ("page", page), ("bank", bank), ("bank_or_threshold", either)):
            totals[key] += value
        print(
            f"   {name:48} {days:>10,.0f} | {threshold:>13} {upper95(threshold, days) * 1e4:>13.2f} |"
            f" {page:>14} {upper95(page, days) * 1e4:>9.2f} | {bank:>14} {upper95(bank, days) * 1e4:>9.2f}"
        )
        figures["classes"][name] = {
            "patch_days": days,
            "false_deactivations": threshold,
            "false_deactivations_upper95_per_10k": upper95(threshold, days) * 1e4,
            "regression_false_alarms_old": page,
            "regression_false_alarms_new": bank,
            "regression_false_alarms_new_upper95_per_10k": upper95(bank, days) * 1e4,
            "deactivations_if_regression_deactivates": either,
        }
    all_days = days * len(classes)
    bound = upper95(totals["threshold"], all_days) * 1e4
    print(
        f"   {'all classes':48} {all_days:>10,.0f} | {totals['threshold']:>13} {bound:>13.2f} |"
        f" {totals['page']:>14} {upper95(totals['page'], all_days) * 1e4:>9.2f} |"
        f" {totals['bank']:>14} {upper95(totals['bank'], all_days) * 1e4:>9.2f}"
    )
    print(
        f"   goal: 95 % upper bound <= {GOAL_PER_10K:g} per 10,000 patch-days: all classes"
        f" {'MET' if bound <= GOAL_PER_10K else 'NOT MET'}; per class"
        f" {'MET' if all(v['false_deactivations_upper95_per_10k'] <= GOAL_PER_10K for v in figures['classes'].values()) else 'NOT MET'}"
        f" ({3 * 1e4 / GOAL_PER_10K:,.0f} patch-days a class needed with none: --healthy-patch-days"
        f" {len(classes) * 3 * 1e4 / GOAL_PER_10K:,.0f})"
    )
    for name in DETECTORS:
        upper = upper95(totals[name], all_days) * 1e4
        print(
            f"   {LABELS[name]}: {totals[name]} false alarms in {all_days:,.0f} patch-days, upper {upper:.2f} per 10,000"
            f" (goal <= {GOAL_PER_10K:g}: {'MET' if upper <= GOAL_PER_10K else 'NOT MET'})"
        )
    rules = settings.rules
    causes = model.threshold_cause[model.threshold_cause >= 0]
    by_cause = {
        f"{rules[c % len(rules)].name} {'early cut-off' if c >= len(rules) else 'for:'}": int((causes == c).sum())
        for c in sorted(set(causes.tolist()))
    }
    print(f"   false deactivations by cause: {by_cause or 'none'}")
    figures["false_deactivations_by_cause"] = by_cause
    either_bound = upper95(totals["bank_or_threshold"], all_days) * 1e4
    print(
        f"   with regression.deactivate (not the default): {totals['bank_or_threshold']} deactivations,"
        f" upper {either_bound:.2f} per 10,000 patch-days"
    )
    figures.update(
        patch_days=all_days,
        false_deactivations=totals["threshold"],
        false_deactivations_upper95_per_10k=bound,
        regression_false_alarms_old=totals["page"],
        regression_false_alarms_new=totals["bank"],
        seconds=round(elapsed, 1),
    )
    return figures


def bad(*, settings: GuardSettings, seed: int, per_rate: int = 200) -> dict:
    """What the threshold rules' settings cost on patches that are really bad: seconds from the
    start of the bad traffic to the deactivation, rollback (= failure) rate 30 % or 50 %, 0.1-10/s."""
    rng = np.random.default_rng(seed + 2)
    rates = (0.30, 0.50)
    rollback = np.repeat(rates, per_rate)
    n = len(rollback)
    start = rng.integers(PER_HOUR // 12, PER_HOUR // 6, n)  # 5-10 min in, mid-minute
    traffic = Traffic(
        rate=10 ** rng.uniform(-1, 1, n),
        failure=np.full(n, 0.05),
        rollback=np.full(n, 0.05),
        factor=rollback / 0.05,
        start=start,
    )
    model = Model(settings=settings, detectors={}, traffic=traffic)
    model.run(PER_HOUR, rng)
    figures = {}
    line = []
    for rate in rates:
        sel = rollback == rate
        first = model.threshold_first[sel]
        seconds = np.where(first >= start[sel], (first - start[sel] + 1) * STEP, np.inf)
        early = int(((first >= 0) & (first < start[sel])).sum())
        q = np.percentile(seconds, [50, 95], method="inverted_cdf")
        figures[f"rollback_{rate:.0%}"] = {
            "seconds_median": float(q[0]),
            "seconds_p95": float(q[1]),
            "missed_in_50_min": int(np.isinf(seconds).sum()),
            "before_start": early,
        }
        line.append(f"{rate:.0%}: median {q[0]:.0f} s, p95 {q[1]:.0f} s")
    print(
        f"   bad patches (rollback = failure rate, 0.1-10/s, {per_rate} each): seconds from the bad traffic's start"
        f" to the deactivation (model, one cycle per 5 s bucket): {'; '.join(line)}"
    )
    return figures


def regressed(*, per_factor: int, hours: float, seed: int, check: int) -> dict:
    steps = int(hours * PER_HOUR)
    rng = np.random.default_rng(seed + 1)
    counts = {f: per_factor * (8 if f == 5.0 else 1) for f in FACTORS}  # 5x: enough per baseline decile
    factor = np.concatenate([np.full(k, f) for f, k in counts.items()])
    n = len(factor)
    p0 = rng.uniform(0.01, 0.10, n)
    traffic = Traffic(
        rate=traffic_rates(rng, n),
        failure=p0,
        rollback=p0,
        factor=factor,
        start=rng.integers(PER_HOUR, 3 * PER_HOUR, n),
    )
    model = Model(settings=GuardSettings(), detectors=DETECTORS, traffic=traffic)
    started = time.monotonic()
    out = model.run(steps, rng, record=check > 0)
    elapsed = time.monotonic() - started
    print(
        f"\n== regressions: {n:,} patches, baseline failure 1-10 % (each rolls back), traffic 0.01-10/s,"
        f" failure rate x factor from 1-3 h in, {hours:g} h each ({elapsed:.0f} s)"
    )
    print(
        "   samples from the regression's start to the Regression rule's alarm (missed: not caught in the run,"
        " counted as infinite in the quantiles):"
    )
    figures: dict = {"patches": n, "hours": hours, "by_factor": {}}
    start = traffic.start
    for name, d in model.detectors.items():
        early = int(((d.first >= 0) & (d.first < start)).sum())
        print(f"   {LABELS[name]} (fired before the regression on {early} of {n:,})")
        for f in FACTORS:
            sel = factor == f
            caught = sel & (d.first >= start)
            samples = np.where(caught, d.samples, np.inf)[sel]
            seconds = np.where(caught, (d.first - start) * STEP, np.inf)[sel]
            missed = int(sel.sum() - caught.sum())
            q = np.percentile(samples, [50, 90], method="inverted_cdf")
            print(
                f"     {f:>4g}x: caught {int(caught.sum()):>5}/{int(sel.sum()):<5} missed {missed:>4} | samples median"
                f" {q[0]:>7.0f}  p90 {q[1]:>7.0f} | seconds median {np.median(seconds):>7.0f}"
            )
            figures["by_factor"].setdefault(f"{f:g}x", {})[name] = {
                "caught": int(caught.sum()),
                "missed": missed,
                "samples_median": float(q[0]),
                "samples_p90": float(q[1]),
                "seconds_median": float(np.median(seconds)),
            }
    # 5x against Lorden's bound at the rule's own budget: gamma = samples per day x budget days.
    five = factor == 5.0
    q = np.minimum(5 * p0, 0.999)
    gamma = traffic.rate * 86_400 * DETECTORS["bank"].budget_patch_days
    bound = np.log(gamma) / cusum.kl_divergence(q, p0, log=np.log)
    deciles = np.percentile(p0[five], np.arange(0, 101, 10))
    print(
        "\n   5x regressions: samples to the alarm / Lorden's lower bound ln(gamma)/KL(5 p0 || p0),"
        f" gamma = samples a day x {DETECTORS['bank'].budget_patch_days:,.0f} days (goal <= {GOAL_RATIO}x;"
        " missed count as infinite)"
    )
    print(
        f"     {'baseline p0':>14} {'patches':>7} {'bound median':>12} | {'old ratio':>9} {'missed':>6} |"
        f" {'new ratio':>9} {'missed':>6}"
    )
    five_figures: dict = {"deciles": []}
    ratios = {}
    for name, d in model.detectors.items():
        caught = five & (d.first >= start)
        ratios[name] = np.where(caught, d.samples / bound, np.inf)
    rows = [("all (median)", five)] + [
        (f"{deciles[i]:.1%}-{deciles[i + 1]:.1%}", five & (p0 >= deciles[i]) & (p0 <= deciles[i + 1]))
        for i in range(10)
    ]
    met = {"page": True, "bank": True}
    for label, sel in rows:
        cells = {name: (float(np.median(r[sel])), int(np.isinf(r[sel]).sum())) for name, r in ratios.items()}
        for name, (ratio, _) in cells.items():
            met[name] &= ratio <= GOAL_RATIO
        print(
            f"     {label:>14} {int(sel.sum()):>7} {np.median(bound[sel]):>12.0f} |"
            f" {cells['page'][0]:>8.2f}x {cells['page'][1]:>6} | {cells['bank'][0]:>8.2f}x {cells['bank'][1]:>6}"
        )
        entry = {
            "p0": label,
            "patches": int(sel.sum()),
            "bound_median": float(np.median(bound[sel])),
            **{f"{name}_ratio": ratio for name, (ratio, _) in cells.items()},
            **{f"{name}_missed": missed for name, (_, missed) in cells.items()},
        }
        if sel is five:
            five_figures["all"] = entry
        else:
            five_figures["deciles"].append(entry)
    # What the ratio is made of: at 10/s a 5-second bucket (50 calls) is about the whole bound at a
    # 10 % baseline, and a patch under 2,000 calls a day has no baseline at all (missed).
    line = []
    for low, high in ((0.01, 0.023), (0.023, 0.1), (0.1, 1.0), (1.0, 10.0)):
        sel = five & (traffic.rate >= low) & (traffic.rate < high)
        cells = " / ".join(f"{np.median(ratios[name][sel]):.2f}x" for name in DETECTORS)
        line.append(f"{low:g}-{high:g}/s: {cells} (n={int(sel.sum())})")
        five_figures[f"traffic_{low:g}_{high:g}"] = {name: float(np.median(ratios[name][sel])) for name in DETECTORS}
    print(f"     median ratio by traffic, old / new: {';  '.join(line)}")
    for name in DETECTORS:
        print(
            f"   {LABELS[name]}: 5x within {GOAL_RATIO}x of Lorden's bound at the median and every decile:"
            f" {'MET' if met[name] else 'NOT MET'}"
        )
    figures["five_x_vs_lorden"] = five_figures
    figures["five_x_goal_met"] = met
    if check:
        figures["checked_patch_steps"] = _check(out, traffic, check)
    figures["seconds"] = round(elapsed, 1)
    return figures


def _check(out: dict, traffic: Traffic, patches: int) -> int:
    """The real guard on the first `patches` patches of this run's traces: the same verdicts as the model."""
    compared = 0
    for k, settings in enumerate(DETECTORS.values()):
        full = with_regression(GuardSettings(), settings)
        for patch in range(min(patches, traffic.size)):
            actions, causes = replay(settings=full, trace=out["trace"], history=out["history"], patch=patch)
            want = (out["actions"][k, : len(actions), patch].tolist(), out["causes"][k, : len(actions), patch].tolist())
            if (actions, causes) != want:
                raise SystemExit(f"model and real guard differ on patch {patch} ({list(DETECTORS)[k]})")
            compared += len(actions)
    print(
        f"   the real guard on {compared:,} of these evaluations (first {patches} patches, both detectors):"
        " identical verdicts to the model"
    )
    return compared


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--healthy-patch-days", type=float, default=8_000, help="healthy patch-days, all classes")
    parser.add_argument("--regressed", type=int, default=200, help="regressed patches per factor (5x: eight times)")
    parser.add_argument("--hours", type=float, default=24, help="hours simulated per healthy patch")
    parser.add_argument("--regression-hours", type=float, default=24, help="hours simulated per regressed patch")
    parser.add_argument(
        "--check", type=int, default=20, help="patches of the regression run replayed by the real guard"
    )
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument(
        "--early-confidence",
        type=float,
        nargs="+",
        help="healthy runs: the early cut-off's confidence (default: the guard's)",
    )
    parser.add_argument(
        "--min-samples", type=int, help="healthy runs: the threshold rules' minimum samples (default: the guard's)"
    )
    parser.add_argument("--classes", type=int, nargs="+", help="healthy runs: these rate classes only (0-3)")
    parser.add_argument("--skip-regressions", action="store_true")
    parser.add_argument("--record-as", default="detection", help="key in bench/results.json")
    args = parser.parse_args()
    print(f"detection bench: {' '.join(sys.argv[1:]) or 'defaults'}")
    figures: dict = {}
    if not args.skip_regressions:
        figures["regressions"] = regressed(
            per_factor=args.regressed, hours=args.regression_hours, seed=args.seed, check=args.check
        )
    default = GuardSettings()
    for confidence in args.early_confidence or [default.early_confidence]:
        settings = dataclasses.replace(
            default, early_confidence=confidence, min_samples=args.min_samples or default.min_samples
        )
        key = "healthy" if settings == default else f"healthy_early_{confidence}_min_samples_{settings.min_samples}"
        classes = tuple(CLASSES[i] for i in args.classes) if args.classes else CLASSES
        figures[key] = healthy(
            patch_days=args.healthy_patch_days, hours=args.hours, seed=args.seed, settings=settings, classes=classes
        )
        figures[key]["bad_patches"] = bad(settings=settings, seed=args.seed)
    figures["command"] = "python bench/detection_bench.py " + " ".join(sys.argv[1:])
    figures["table"] = table_rows(figures)
    record(args.record_as, figures)


def table_rows(figures: dict) -> list[dict]:
    """The README table's rows (bench/results.py): the 5x regression against Lorden's bound, and
    false deactivations per healthy class with their 95 % upper bound."""
    rows = []
    five = figures.get("regressions", {}).get("five_x_vs_lorden")
    if five:
        worst = max(decile["bank_ratio"] for decile in five["deciles"])
        rows.append(
            {
                "figure": "samples to catch a 5x regression (bank of CUSUMs)",
                "value": f"median {five['all']['bank_ratio']:.2f}x the bound, worst decile {worst:.2f}x "
                f"({five['all']['bank_missed']} of {five['all']['patches']} without a baseline)",
                "baseline": f"Lorden's bound; Page's CUSUM: {five['all']['page_ratio']:.2f}x",
                "ratio": f"{five['all']['bank_ratio']:.2f}x",
                "goal": "<= 1.25x at the median and every decile",
                "met": five["all"]["bank_ratio"] <= 1.25 and worst <= 1.25,
            }
        )
    for name, figures_of in sorted(figures.get("healthy", {}).get("classes", {}).items()):
        bound = figures_of["false_deactivations_upper95_per_10k"]
        rows.append(
            {
                "figure": f"false deactivations, healthy {name}",
                "value": f"{figures_of['false_deactivations']} in {figures_of['patch_days']:,.0f} patch-days",
                "baseline": "—",
                "ratio": f"95 % bound {bound:.1f} per 10,000",
                "goal": "<= 1 per 10,000 patch-days (95 % bound)",
                "met": bound <= 1.0,
            }
        )
    return rows


if __name__ == "__main__":
    main()
