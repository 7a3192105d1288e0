"""The PrometheusRule: valid for promtool, unit-tested with `promtool test rules` (alert_tests.yaml),
on metrics selfheal exports, the runbook's three alerts as the English runbook prints them (with the
French text beside), and every alert linked to its section of the English runbook."""

from __future__ import annotations

import importlib.metadata
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
RUNBOOK_EN = ROOT / "docs/runbook.en.md"
RUNBOOK_FR = ROOT / "docs/runbook.fr.md"
RUNBOOK_URL = "https://github.com/molam/selfheal/blob/main/docs/runbook.en.md#"
RUNBOOK_ALERTS = ("SelfHealHighRollbackRate", "SelfHealPatchFailing", "SelfHealHighVolume")
# The runbook's metric names stay as it writes them; every other metric selfheal exports is `selfheal_*`.
RUNBOOK_METRICS = {
    "self_heal_patches_total",
    "self_heal_rollbacks_total",
    "self_heal_success_rate",
    "self_heal_patch_applications_total",
    "self_heal_patch_failures_total",
}


def all_rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULE.read_text())["spec"]["groups"] for rule in group["rules"]]


def rules() -> list[dict]:
    """The alerting rules."""
    return [rule for rule in all_rules() if "alert" in rule]


def recorded() -> set[str]:
    return {rule["record"] for rule in all_rules() if "record" in rule}


def families(*, api: bool = True, operator: bool = True) -> list:
    """The metric families selfheal serves: the operator's (registered in the default registry) and
    the API's as it serves them (its per-patch counters are rendered by hand)."""
    return [
        *(REGISTRY.collect() if operator else []),
        *(text_string_to_metric_families(ApiMetrics().exposition().decode()) if api else []),
    ]


def exported_names(found) -> set[str]:
    # Labelled series only appear once used: the names come from the metric families.
    return {metric.name + ("_total" if metric.type == "counter" else "") for metric in found}


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings: lower case, punctuation dropped, spaces as hyphens,
    a repeated anchor suffixed -1, -2..."""
    anchors: set[str] = set()
    for heading in re.findall(r"^#{1,6} (.+?)\s*$", re.sub(r"```.*?```", "", markdown, flags=re.S), flags=re.M):
        base = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchor, count = base, 0
        while anchor in anchors:
            count += 1
            anchor = f"{base}-{count}"
        anchors.add(anchor)
    return anchors


def runbook_alerts(path: Path, *, marker: str = "") -> dict[str, dict]:
    """The alerts of a runbook's ```yaml blocks (the English one: the block after `marker`)."""
    text = path.read_text(encoding="utf-8")
    blocks = re.findall(re.escape(marker) + r"```yaml\n(.*?)```", text, flags=re.S)
    return {rule["alert"]: rule for block in blocks for rule in yaml.safe_load(block)}


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
    assert f"SUCCESS: {len(all_rules())} rules found" in promtool("check", "rules", "rules.yml", cwd=rules_dir)


def test_promtool_unit_tests(rules_dir):
    assert "SUCCESS" in promtool("test", "rules", UNIT_TESTS.name, cwd=rules_dir)


def test_every_alert_has_a_series_that_fires_and_one_that_must_not():
    cases = [
        case for test in yaml.safe_load(UNIT_TESTS.read_text())["tests"] for case in test.get("alert_rule_test", [])
    ]
    for rule in rules():
        mine = [case for case in cases if case["alertname"] == rule["alert"]]
        assert any(case["exp_alerts"] for case in mine), f"{rule['alert']}: nothing must fire"
        assert any(not case["exp_alerts"] for case in mine), f"{rule['alert']}: nothing must stay quiet"


def test_rules_read_metrics_that_selfheal_exports_or_records():
    exported = exported_names(families())
    for rule in all_rules():
        read = set(re.findall(r"\b(self_?heal_\w+)", rule["expr"]))
        assert read <= exported | recorded(), f"{rule.get('alert') or rule['record']} reads {read - exported}"


def test_success_rate_is_recorded_over_counters_not_served_per_pod():
    assert recorded() == {"self_heal_success_rate"}
    [rule] = [rule for rule in all_rules() if rule.get("record") == "self_heal_success_rate"]
    assert set(re.findall(r"\b(self_heal_\w+)", rule["expr"])) == {
        "self_heal_patch_failures_total",
        "self_heal_patch_applications_total",
    }
    assert "by" not in rule["expr"], "fleet-wide: no label kept"
    # A sample of the same name scraped from the API would clash with the recorded series (the API
    # may describe it, HELP and TYPE without a sample, for the runbook's grep).
    assert not [s for family in families() for s in family.samples if s.name == "self_heal_success_rate"]


def test_one_metric_prefix_beside_the_runbooks_names():
    # `_created` series are the client library's own (a counter's creation time), named after the counter.
    ours = {
        name
        for name in exported_names(families())
        if name.startswith(("self_heal", "selfheal")) and not name.endswith("_created")
    }
    assert {name for name in ours if not name.startswith("selfheal_")} <= RUNBOOK_METRICS
    assert RUNBOOK_METRICS - {"self_heal_success_rate"} <= ours


@pytest.mark.parametrize("who", ["api", "operator"])
def test_build_info_names_the_version(who):
    found = families(api=who == "api", operator=who == "operator")
    samples = [s for family in found for s in family.samples if s.name == "selfheal_build_info"]
    assert [(sorted(s.labels), s.value) for s in samples] == [(["version"], 1.0)]
    assert samples[0].labels["version"] == importlib.metadata.version("selfheal")


def test_every_alert_links_its_runbook_section():
    anchors = github_anchors(RUNBOOK_EN.read_text(encoding="utf-8"))
    for rule in rules():
        url = rule["annotations"]["runbook_url"]
        assert url.startswith(RUNBOOK_URL), url
        assert url.removeprefix(RUNBOOK_URL) in anchors, f"{rule['alert']}: no heading for {url}"
    # The anchor function is GitHub's: a heading with punctuation and a repeated heading.
    assert github_anchors("# A patch causes errors\n## Café: (é)\n## A patch causes errors\n") == {
        "a-patch-causes-errors",
        "café-é",
        "a-patch-causes-errors-1",
    }


def test_alerts_speak_english_and_keep_the_runbooks_french():
    english, french = runbook_alerts(RUNBOOK_EN, marker="<!-- check: alerts -->\n"), runbook_alerts(RUNBOOK_FR)
    for rule in rules():
        annotations = rule["annotations"]
        assert {"summary", "description", "runbook_url"} <= annotations.keys(), rule["alert"]
        french_words = re.compile(r"[éèàç]|\b(?:le|la|les|des|est|sont|échoue)\b", re.I)
        assert not french_words.search(annotations["summary"] + annotations["description"]), rule["alert"]
    for name in RUNBOOK_ALERTS:
        ours = next(rule for rule in rules() if rule["alert"] == name)["annotations"]
        assert ours["summary"] == english[name]["annotations"]["summary"]
        assert ours["summary_fr"] == french[name]["annotations"]["summary"]
        # Ours add the figure, "(30%)" or "(120/min)", to the runbook's sentence.
        for key, runbook in (("description", english), ("description_fr", french)):
            sentence = re.sub(r" \(\{\{[^}]*\}\}[^)]*\)", "", ours[key]).removesuffix(".")
            assert sentence == runbook[name]["annotations"]["description"], (name, key)


def test_the_runbook_alerts_are_the_english_runbooks():
    documented = runbook_alerts(RUNBOOK_EN, marker="<!-- check: alerts -->\n")
    ours = {rule["alert"]: rule for rule in rules()}
    for name in RUNBOOK_ALERTS:
        assert " ".join(ours[name]["expr"].split()) == " ".join(documented[name]["expr"].split()), name
        assert (ours[name]["for"], ours[name]["labels"]) == (documented[name]["for"], documented[name]["labels"])
