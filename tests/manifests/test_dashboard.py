"""The Grafana dashboard: every query is valid PromQL (promtool parses it) on metrics selfheal
exports or records, the runbook's metrics are on it, a patch variable filters the per-patch panels,
deactivations are annotations, the guard's cycle time has a panel, and the production overlay ships it."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import yaml
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from selfheal.api.metrics import ApiMetrics
from selfheal.controller import metrics as guard_metrics  # noqa: F401  (registers the operator's metrics)
from tests.manifests.conftest import build, find
from tests.manifests.test_alerts import recorded

DASHBOARD = Path(__file__).resolve().parents[2] / "manifests/components/monitoring/dashboards/selfheal.json"
RUNBOOK_METRICS = {"self_heal_patches_total", "self_heal_success_rate", "self_heal_rollbacks_total"}


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def queries() -> list[str]:
    """Every PromQL expression: the panels' and the annotations'."""
    return [target["expr"] for panel in dashboard()["panels"] for target in panel["targets"]] + [
        annotation["expr"] for annotation in dashboard()["annotations"]["list"]
    ]


def variable(name: str) -> dict:
    [found] = [v for v in dashboard()["templating"]["list"] if v["name"] == name]
    return found


def test_panels_are_well_formed():
    panels = dashboard()["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels)
    for panel in panels:
        assert panel["datasource"]["uid"] == "${datasource}" and panel["targets"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24


def test_every_query_parses(tmp_path):
    # promtool has no query checker; recording rules are parsed like any query.
    rules = [{"record": f"dashboard:query_{index}", "expr": expr} for index, expr in enumerate(queries())]
    (tmp_path / "queries.yml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        ["promtool", "check", "rules", str(tmp_path / "queries.yml")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_queries_read_exported_metrics_and_show_the_runbooks():
    # The API's families as it serves them (its per-patch counters are rendered by hand).
    families = [*REGISTRY.collect(), *text_string_to_metric_families(ApiMetrics().exposition().decode())]
    exported = {metric.name + ("_total" if metric.type == "counter" else "") for metric in families}
    exported |= {
        f"{metric.name}_{suffix}"
        for metric in families
        if metric.type == "histogram"
        for suffix in ("bucket", "sum", "count")
    }
    read = {name for expr in queries() for name in re.findall(r"\b(self_?heal_\w+)", expr)}
    read |= set(re.findall(r"\b(self_?heal_\w+)", variable("patch")["definition"]))
    assert read <= exported | recorded(), read - exported - recorded()
    assert RUNBOOK_METRICS <= read


def test_patch_variable_filters_every_per_patch_panel():
    patch = variable("patch")
    assert (
        patch["query"]["query"] == patch["definition"] == "label_values(self_heal_patch_applications_total, patch_id)"
    )
    assert patch["multi"] and patch["includeAll"] and patch["allValue"] == ".*"
    for panel in dashboard()["panels"]:
        for target in panel["targets"]:
            if "patch_id" in target["expr"]:
                # Every selector of a per-patch query takes the variable (a regex: multi-value and All).
                selectors = re.findall(r"\b(self_?heal_\w+)(\{[^}]*\})?", target["expr"])
                assert all('patch_id=~"$patch"' in labels for _, labels in selectors), (panel["title"], target["expr"])


def test_deactivations_are_annotations():
    [annotation] = dashboard()["annotations"]["list"]
    assert annotation["datasource"]["uid"] == "${datasource}" and annotation["enable"]
    assert re.fullmatch(
        r"sum by \(reason, rule\) \(increase\(selfheal_guard_deactivations_total\[\w+\]\)\) > 0", annotation["expr"]
    ), annotation["expr"]
    assert "{{reason}}" in annotation["titleFormat"] and "{{rule}}" in annotation["textFormat"]


def test_guard_cycle_time_has_a_panel():
    cycle = [
        panel
        for panel in dashboard()["panels"]
        if any("selfheal_guard_cycle_seconds_bucket" in target["expr"] for target in panel["targets"])
    ]
    assert [panel["fieldConfig"]["defaults"]["unit"] for panel in cycle] == ["s"]


def test_production_ships_the_dashboard(devenv):
    config_map = find(build(devenv, "production"), "ConfigMap", "selfheal-grafana-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(config_map["data"]["selfheal.json"]) == dashboard()
