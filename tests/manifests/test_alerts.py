"""The PrometheusRule: valid for promtool, unit-tested with `promtool test rules` (alert_tests.yaml),
on metrics selfheal exports, and the runbook's three alerts as the English runbook prints them."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from selfheal.api.metrics import ApiMetrics
from selfheal.controller import metrics as guard_metrics  # noqa: F401  (registers the operator's metrics)

ROOT = Path(__file__).resolve().parents[2]
RULE = ROOT / "manifests/components/monitoring/prometheusrule.yaml"
UNIT_TESTS = Path(__file__).parent / "alert_tests.yaml"
RUNBOOK_ALERTS = ("SelfHealHighRollbackRate", "SelfHealPatchFailing", "SelfHealHighVolume")


def rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULE.read_text())["spec"]["groups"] for rule in group["rules"]]


@pytest.fixture()
def rules_dir(tmp_path) -> Path:
    spec = yaml.safe_load(RULE.read_text())["spec"]
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    shutil.copy(UNIT_TESTS, tmp_path / UNIT_TESTS.name)
    return tmp_path


def promtool(*args: str, cwd: Path) -> str:
    result = subprocess.run(["promtool", *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_promtool_check_rules(rules_dir):
    assert f"SUCCESS: {len(rules())} rules found" in promtool("check", "rules", "rules.yml", cwd=rules_dir)


def test_promtool_unit_tests(rules_dir):
    assert "SUCCESS" in promtool("test", "rules", UNIT_TESTS.name, cwd=rules_dir)


def test_every_alert_has_a_series_that_fires_and_one_that_must_not():
    cases = [case for test in yaml.safe_load(UNIT_TESTS.read_text())["tests"] for case in test["alert_rule_test"]]
    for rule in rules():
        mine = [case for case in cases if case["alertname"] == rule["alert"]]
        assert any(case["exp_alerts"] for case in mine), f"{rule['alert']}: nothing must fire"
        assert any(not case["exp_alerts"] for case in mine), f"{rule['alert']}: nothing must stay quiet"


def test_rules_read_metrics_that_selfheal_exports():
    # Labelled series only appear once used: the names come from the metric families.
    # The API's families as it serves them (its per-patch counters are rendered by hand).
    families = [*REGISTRY.collect(), *text_string_to_metric_families(ApiMetrics().exposition().decode())]
    exported = {metric.name + ("_total" if metric.type == "counter" else "") for metric in families}
    for rule in rules():
        read = set(re.findall(r"\b(self_?heal_\w+)", rule["expr"]))
        assert read <= exported, f"{rule['alert']} reads {read - exported}"


def test_the_runbook_alerts_are_the_english_runbooks():
    text = (ROOT / "docs/runbook.en.md").read_text()
    block = re.search(r"<!-- check: alerts -->\n```yaml\n(.*?)```", text, flags=re.S).group(1)
    documented = {rule["alert"]: rule for rule in yaml.safe_load(block)}
    ours = {rule["alert"]: rule for rule in rules()}
    for name in RUNBOOK_ALERTS:
        assert " ".join(ours[name]["expr"].split()) == " ".join(documented[name]["expr"].split()), name
        assert (ours[name]["for"], ours[name]["labels"]) == (documented[name]["for"], documented[name]["labels"])
