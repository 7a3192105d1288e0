"""The Grafana dashboard: every query is valid PromQL (promtool parses it) on metrics selfheal
exports, the runbook's metrics are on it, and the production overlay ships it."""

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

DASHBOARD = Path(__file__).resolve().parents[2] / "manifests/components/monitoring/dashboards/selfheal.json"
RUNBOOK_METRICS = {"self_heal_patches_total", "self_heal_success_rate", "self_heal_rollbacks_total"}


def queries() -> list[str]:
    return [target["expr"] for panel in json.loads(DASHBOARD.read_text())["panels"] for target in panel["targets"]]


def test_panels_are_well_formed():
    panels = json.loads(DASHBOARD.read_text())["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels)
    for panel in panels:
        assert panel["datasource"]["uid"] == "${datasource}" and panel["targets"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24


def test_every_query_parses(tmp_path):
    # promtool has no query checker; recording rules are parsed like any query.
    rules = [{"record": f"dashboard:query_{index}", "expr": expr} for index, expr in enumerate(queries())]
    (tmp_path / "queries.yml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(["promtool", "check", "rules", str(tmp_path / "queries.yml")], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_queries_read_exported_metrics_and_show_the_runbooks():
    # The API's families as it serves them (its per-patch counters are rendered by hand).
    families = [*REGISTRY.collect(), *text_string_to_metric_families(ApiMetrics().exposition().decode())]
    exported = {metric.name + ("_total" if metric.type == "counter" else "") for metric in families}
    exported |= {f"{metric.name}_bucket" for metric in families if metric.type == "histogram"}
    read = {name for expr in queries() for name in re.findall(r"\b(self_?heal_\w+)", expr)}
    assert read <= exported, read - exported
    assert RUNBOOK_METRICS <= read


def test_production_ships_the_dashboard(devenv):
    config_map = find(build(devenv, "production"), "ConfigMap", "selfheal-grafana-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(config_map["data"]["selfheal.json"]) == json.loads(DASHBOARD.read_text())
