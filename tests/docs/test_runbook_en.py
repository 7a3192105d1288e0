"""docs/runbook.en.md cannot rot: every block in it runs here, in document order, against the real
operator, API server, PostgreSQL registry, Prometheus and the `selfheal` command.

Each ```bash block is marked `<!-- check: NAME -->`; the test runs it with bash (`set -euo pipefail`)
in an environment holding what the runbook's setup exports (pointing at this session's processes)
and what it asks the reader to fill in (PATCH_ID, PATCH). `kubectl logs devportal-api` needs a
kubelet, which the local control plane has not: the API's log file stands in for it (same lines).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
import yaml

from molam.envelope import key_id
from tests.api_server import start_api_server
from tests.prometheus_server import prometheus
from tests.runbook import psql_argvs, psql_commands, sql_statements
from tests.support import new_namespace, wait_until

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK_EN = ROOT / "docs" / "runbook.en.md"
PROMETHEUS_RULE = ROOT / "manifests/components/monitoring/prometheusrule.yaml"
TEXT = RUNBOOK_EN.read_text(encoding="utf-8")
CHECKED = dict(
    (name, (language, body))
    for name, language, body in re.findall(r"<!-- check: (\S+) -->\n```(\w+)\n(.*?)```", TEXT, flags=re.S)
)
NAME = f"docs-{uuid.uuid4().hex[:6]}"


def test_every_block_is_checked_or_plain_sql():
    fences = re.findall(r"(?:<!-- check: (\S+) -->\n)?```(\w+)\n", TEXT)
    assert [language for name, language in fences if not name] == ["sql", "sql"]
    assert len(CHECKED) == len([name for name, _ in fences if name])  # no name used twice


def _words(sql: str) -> str:
    sql = re.sub(r"^\s*--.*$", "", sql, flags=re.M).replace("$PATCH_ID", "PATCH_ID")
    sql = re.sub(r"'[^']*'", "'?'", sql)
    return " ".join(sql.split()).rstrip(";").strip()


def _english_psql_queries() -> set[str]:
    return {_words(argv[argv.index("-c") + 1]) for argv in psql_argvs(body for _, body in CHECKED.values())}


def test_every_query_of_the_french_runbook_is_in_the_english_one():
    english = _english_psql_queries() | {
        _words(s) for s in re.findall(r"```sql\n(.*?)```", TEXT, flags=re.S) for s in s.split(";") if _words(s)
    }
    french = [_words(s) for s in sql_statements()] + [_words(argv[-1]) for argv in psql_commands()]
    # The French "update a patch" is a ```sql block; the English runs it through psql.
    missing = [query for query in french if query not in english]
    assert missing == []


@pytest.fixture(scope="module")
def world(operator, operator_database_url, devenv, kube_client, tmp_path_factory):
    namespace = new_namespace(kube_client, "runbook")
    directory = tmp_path_factory.mktemp("runbook-en")
    server = start_api_server(
        database_url=operator_database_url,
        kubeconfig=devenv.kubeconfig,
        patch_namespace=namespace,
        directory=tmp_path_factory.mktemp("api"),
        rate=1000,
    )
    work = directory / "work"
    work.mkdir()
    (work / "api.log").symlink_to(server.log_file)
    (work / "selfheal-public.pem").write_text(server.public_key_pem)
    # The runbook's alerts, and the shipped recording rules (the runbook's success rate) over the API's metrics.
    shipped = yaml.safe_load(PROMETHEUS_RULE.read_text(encoding="utf-8"))["spec"]["groups"]
    rules = {
        "groups": [
            {"name": "runbook", "rules": yaml.safe_load(CHECKED["alerts"][1])},
            *[group for group in shipped if all("record" in rule for rule in group["rules"])],
        ]
    }
    with prometheus(directory, yaml.safe_dump(rules), scrape=[server.url.removeprefix("http://")]) as prometheus_url:
        env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}:{devenv.bin_dir}:{os.environ['PATH']}",
            "KUBECONFIG": str(devenv.kubeconfig),
            "SELFHEAL_DATABASE_URL": operator_database_url,
            "DEVPORTAL": server.url,
            "DEV_TOKEN": server.token("runbook-dev"),
            "ADMIN_TOKEN": server.token("runbook-ops", role="dev_admin"),
            "PROMETHEUS_URL": prometheus_url,
            "PATCH": f"{namespace}/{NAME}",
            "MOLAM_API_KEY": "pk_test",
            "MOLAM_SECRET_KEY": "sk_test",
            "SELFHEAL_KEY_ID": key_id(server.public_key_pem),
        }
        yield {
            "env": env,
            "work": work,
            "server": server,
            "namespace": namespace,
            "db": operator_database_url,
            "kubectl": str(devenv.kubectl),
            "devenv": devenv,
        }
    server.stop()


def kubectl(world, *args: str) -> str:
    result = subprocess.run([world["kubectl"], *args], env=world["env"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def run(world, name: str) -> str:
    language, body = CHECKED[name]
    assert language == "bash", name
    result = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + body],
        cwd=world["work"],
        env=world["env"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"{name}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def row(world) -> dict:
    with psycopg.connect(world["db"], row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute(
            "SELECT * FROM sdk_self_healing_registry WHERE id = %s", (world["env"]["PATCH_ID"],)
        ).fetchone()


def eventually(predicate, what: str):
    return wait_until(predicate, timeout=60, what=what)


@pytest.fixture(scope="module")
def patch(world):
    """The patch the runbook's steps act on, and failures of it in the last hour (below the guard's
    minimum samples, so the guard leaves the decision to the person following the runbook)."""
    manifest = {
        "apiVersion": "selfheal.molam.io/v1alpha1",
        "kind": "SelfHealPatch",
        "metadata": {"name": NAME, "namespace": world["namespace"]},
        "spec": {
            "sdkLanguage": "node",
            "errorSignature": "401 Unauthorized",
            "patchCode": "this.timeout = 20000;",
            "rollbackCode": "this.timeout = 10000;",
            "description": f"Runbook walkthrough {NAME}",
            "severity": "medium",
        },
    }
    subprocess.run(
        [world["kubectl"], "apply", "-f", "-"],
        input=json.dumps(manifest),
        env=world["env"],
        check=True,
        capture_output=True,
        text=True,
    )
    kubectl(world, "wait", "--for=condition=Ready", f"shp/{NAME}", "-n", world["namespace"], "--timeout=60s")
    patch_id = json.loads(kubectl(world, "get", "shp", NAME, "-n", world["namespace"], "-o", "json"))["status"][
        "registryId"
    ]
    world["env"]["PATCH_ID"] = patch_id
    with psycopg.connect(world["db"], autocommit=True) as conn:
        conn.execute(
            """INSERT INTO sdk_patch_applications (patch_id, developer_id, sdk_language, error_encountered, success,
                                                   rollback_triggered, context, applied_at)
               SELECT %s, 'runbook-dev', 'node', '401 Unauthorized', false, k <= 3, '{"test": true}',
                      now() - k * interval '1 millisecond'
               FROM generate_series(1, 8) k""",
            (patch_id,),
        )
        # Milliseconds, not minutes: the runbook's rollback query keeps the 20 newest rows of the shared
        # registry, and earlier tests leave rollbacks of their own from the last few minutes.
    yield patch_id
    # The registry is the session's: later tests must not be answered by the walkthrough's patches.
    kubectl(world, "delete", "shp", "--all", "-n", world["namespace"], "--timeout=60s")
    kubectl(
        world,
        "delete",
        "shp",
        "python-connectionerror-backup-api",
        "-n",
        "default",
        "--ignore-not-found",
        "--timeout=60s",
    )
    with psycopg.connect(world["db"], autocommit=True) as conn:
        conn.execute("""UPDATE sdk_self_healing_registry SET active = false
                        WHERE source_name IS NULL AND description = 'Fallback API backup pour Python'""")

        def still_active():
            rows = conn.execute(
                """SELECT id, source_namespace, source_name, description, validation_state
                   FROM sdk_self_healing_registry
                   WHERE active AND (source_namespace = %s
                                     OR (source_namespace, source_name) = ('default', 'python-connectionerror-backup-api')
                                     OR (source_name IS NULL AND description = 'Fallback API backup pour Python'))""",
                (world["namespace"],),
            ).fetchall()
            return rows == [] or rows

        try:
            eventually(lambda: still_active() is True, "walkthrough patches off")
        except AssertionError:
            raise AssertionError(f"walkthrough patches still active: {still_active()}") from None


def test_setup_exports_what_the_commands_use(world):
    env = {**world["env"], "SELFHEAL_STATE_DIR": str(world["devenv"].state_dir)}
    body = CHECKED["setup"][1] + '\necho "$KUBECONFIG|$SELFHEAL_DATABASE_URL|$DEVPORTAL|$(command -v kubectl)"\n'
    result = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + body], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    kubeconfig, database_url, devportal, kubectl_path = result.stdout.strip().splitlines()[-1].split("|")
    assert kubeconfig == str(world["devenv"].kubeconfig) and database_url == world["devenv"].database_url
    assert devportal == "http://localhost:8140" and kubectl_path == str(world["devenv"].kubectl)


def test_find_resource(world, patch):
    output = run(world, "find-resource")
    assert f"{world['namespace']}/{NAME}" in output.splitlines()[0]
    assert NAME in output and patch in output


def test_metrics(world, patch):
    output = run(world, "metrics")
    for metric in ("self_heal_patches_total", "self_heal_rollbacks_total"):
        assert re.search(rf"^{metric} \d", output, flags=re.M), output
    # A recording rule in Prometheus (fleet-wide, windowed); the API's /metrics says so.
    assert re.search(r"^# HELP self_heal_success_rate .*recording rule", output, flags=re.M), output


def test_prometheus_records_the_success_rate_from_the_apis_counters(world, patch):
    """What the runbook says: Prometheus, scraping the API with the shipped recording rule, has the
    fleet-wide value (`promtool query instant`). It needs applications reported between two scrapes."""

    token = world["env"]["DEV_TOKEN"]
    _, _, served = world["server"].request(
        "POST", "/api/dev/self-heal", token=token, body={"sdk": "node", "error": "401 Unauthorized"}
    )
    assert served["patch"]["id"] == patch, served
    receipt = served["receipt"]  # what an SDK sends back with its reports of this patch

    def report():
        body = {
            "reports": [
                {"patch_id": patch, "sdk": "node", "error": "401 Unauthorized", "success": True, "receipt": receipt}
            ]
        }
        status, _, answer = world["server"].request("POST", "/api/dev/self-heal/reports", token=token, body=body)
        assert status in (200, 202), answer
        world["reported"] = world.get("reported", 0) + 1  # rows the export counts too
        return True

    def query(expr: str) -> list[dict]:
        result = subprocess.run(
            ["promtool", "query", "instant", "-o", "json", world["env"]["PROMETHEUS_URL"], expr],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    report()
    eventually(lambda: query("self_heal_patch_applications_total"), "applications scraped")
    [sample] = eventually(lambda: report() and query("self_heal_success_rate"), "success rate recorded")
    # One fleet-wide series, recorded by the rule: no per-pod gauge scraped beside it.
    assert sample["metric"] == {"__name__": "self_heal_success_rate"}, sample
    assert 0 <= float(sample["value"][1]) <= 1


def test_sql_queries_run_unchanged(world, patch):
    blocks = re.findall(r"```sql\n(.*?)```", TEXT, flags=re.S)
    for statement in (s for block in blocks for s in block.split(";") if _words(s)):
        result = subprocess.run(
            ["psql", world["db"], "-X", "-v", "ON_ERROR_STOP=1", "-c", statement],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 0, result.stderr
    top = subprocess.run(
        ["psql", world["db"], "-X", "-At", "-c", blocks[0].split(";")[0]], capture_output=True, text=True, check=True
    ).stdout
    assert "401 Unauthorized|Runbook walkthrough" in top


def test_reports(world, patch):
    output = run(world, "reports")
    assert f"Runbook walkthrough {NAME}" in output and len(re.findall(r"^\(\d+ rows?\)$", output, flags=re.M)) == 3


def test_alerts_are_valid_rules_on_metrics_we_serve(world, patch):
    rules = yaml.safe_load(CHECKED["alerts"][1])
    assert [r["alert"] for r in rules] == ["SelfHealHighRollbackRate", "SelfHealPatchFailing", "SelfHealHighVolume"]
    assert [(r["for"], r["labels"]["severity"]) for r in rules] == [
        ("10m", "warning"),
        ("15m", "critical"),
        ("10m", "warning"),
    ]
    rules_file = world["work"] / "alerts.yml"
    rules_file.write_text(yaml.safe_dump({"groups": [{"name": "selfheal", "rules": rules}]}))
    result = subprocess.run(["promtool", "check", "rules", str(rules_file)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    # Prometheus loaded them too (the checklist step asks it); every series they read is served.
    _, _, served = world["server"].request("GET", "/metrics")
    served = served.get("raw", "")
    for rule in rules:
        for metric in re.findall(r"\bself_heal_\w+", rule["expr"]):
            base = metric.removesuffix("_total")
            assert re.search(rf"^# TYPE {base} ", served, flags=re.M) or metric in served, metric


def test_troubleshooting_patches_not_applied(world, patch):
    output = run(world, "not-applied")
    assert re.search(r"^\s+\d+$", output, flags=re.M)
    assert re.search(rf"^{world['namespace']}\s+{NAME}\s.*Active", output, flags=re.M), output


def test_manual_self_heal_call_and_api_log_line(world, patch):
    output = run(world, "self-heal-curl")
    answer = json.loads(output)
    assert (answer["patch"]["id"], answer["patch"]["matched_by"]) == (patch, "exact"), output
    assert answer["envelope"]["format"] == "selfheal.patch.v1"
    line_format = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d INFO selfheal\.api self-heal (\{.*\})$")
    logged = eventually(
        lambda: [m for m in map(line_format.match, world["server"].log().splitlines()) if m],
        "self-heal line in the API log",
    )
    output = run(world, "api-logs")
    assert line_format.match(output.splitlines()[-1])
    # The example line in the runbook has the real line's shape.
    example = line_format.match(CHECKED["api-logs"][1].splitlines()[1].removeprefix("# "))
    assert example and set(json.loads(example.group(1).replace("…", ""))) == set(json.loads(logged[-1].group(1)))


def test_find_the_failing_patch(world, patch):
    output = run(world, "find-failing")
    assert output.count(patch) == 2, output  # psql and selfheal report


def test_disable_with_the_kill_switch_then_the_api_then_sql(world, patch):
    run(world, "disable")
    assert (row(world)["active"], row(world)["deactivation_reason"]) == (False, "ManualKillSwitch")
    eventually(
        lambda: re.search(r"Inactive\s+ManualKillSwitch", kubectl(world, "get", "shp", NAME, "-n", world["namespace"])),
        "status",
    )
    _enable(world)

    answer = json.loads(run(world, "disable-api"))
    assert answer and (row(world)["active"], row(world)["deactivation_reason"]) == (False, "ManualKillSwitch")
    _enable(world)

    run(world, "disable-sql")
    assert (row(world)["active"], row(world)["deactivation_reason"]) == (False, "DeactivatedInRegistry")
    eventually(
        lambda: "DeactivatedInRegistry" in kubectl(world, "get", "shp", NAME, "-n", world["namespace"]), "status"
    )


def _enable(world):
    result = subprocess.run(
        ["selfheal", "enable", world["env"]["PATCH"]], env=world["env"], check=True, capture_output=True, text=True
    )
    try:
        eventually(lambda: row(world)["active"], "patch active again")
    except AssertionError:
        with psycopg.connect(world["db"]) as conn:
            audit = conn.execute(
                "SELECT action, actor, active, reason, at FROM sdk_patch_audit WHERE patch_id = %s ORDER BY id",
                (world["env"]["PATCH_ID"],),
            ).fetchall()
        raise AssertionError(f"{result.stdout}\naudit: {audit}") from None


def test_show_code(world, patch):
    output = run(world, "show-code")
    assert output.count("this.timeout = 20000;") == 2 and output.count("this.timeout = 10000;") == 2


def test_fix_and_reenable(world, patch):
    run(world, "fix")
    eventually(
        lambda: row(world)["active"] and row(world)["patch_code"] == "this.timeout = 30000;", "fixed patch served"
    )
    assert row(world)["validation_state"] == "valid"


def test_fix_with_sql(world, patch):
    before = row(world)["version"]
    run(world, "fix-sql")
    eventually(
        lambda: row(world)["validation_state"] == "valid" and row(world)["operations"] is not None,
        "SQL fix compiled by the operator",
    )
    fixed = row(world)
    assert fixed["patch_code"] == "this.timeout = 45000;" and fixed["active"] and fixed["version"] != before


def test_rollbacks_and_improving_rollback_code(world, patch):
    output = run(world, "rollbacks")
    assert output.count(f"Runbook walkthrough {NAME}") == 6  # 3 rollbacks, psql and selfheal report
    run(world, "improve-rollback")
    assert row(world)["rollback_code"] == "this.timeout = 10000;"


def test_create_through_the_api(world, patch):
    created = json.loads(run(world, "create-api"))
    assert created, created
    resources = json.loads(kubectl(world, "get", "shp", "-n", world["namespace"], "-o", "json"))["items"]
    assert any(r["spec"]["errorSignature"] == "ECONNREFUSED" for r in resources)


def test_create_with_kubectl_and_with_sql(world, patch):
    run(world, "create-kubectl")
    with psycopg.connect(world["db"], autocommit=True) as conn:
        before = conn.execute(
            "SELECT count(*) FROM sdk_self_healing_registry WHERE error_signature = "
            "'ConnectionError' AND source_name IS NULL"
        ).fetchone()[0]
        run(world, "create-sql")

        def compiled():
            return (
                conn.execute(
                    "SELECT count(*) FROM sdk_self_healing_registry WHERE error_signature = "
                    "'ConnectionError' AND source_name IS NULL AND validation_state = 'valid'"
                ).fetchone()[0]
                == before + 1
            )

        eventually(compiled, "SQL-created patch validated by the operator")


def test_disable_and_bring_back_with_sql(world, patch):
    run(world, "disable-patch-sql")
    assert row(world)["active"]
    with psycopg.connect(world["db"]) as conn:
        actions = [
            a
            for (a,) in conn.execute(
                "SELECT action FROM sdk_patch_audit WHERE patch_id = %s ORDER BY id DESC LIMIT 2", (patch,)
            )
        ]
    assert actions == ["activate", "deactivate"]


def test_update_increments_version_and_keeps_history(world, patch):
    output = run(world, "update")
    assert "recorded_by" in output
    with psycopg.connect(world["db"]) as conn:
        eventually(
            lambda: (
                "3.0.0"
                in [v for (v,) in conn.execute("SELECT version FROM sdk_patch_versions WHERE patch_id = %s", (patch,))]
            ),
            "version 3.0.0 recorded",
        )
    assert row(world)["patch_code"] == "this.timeout = 60000;"


def test_export_both_ways_gives_the_same_file(world, patch):
    run(world, "export")  # ends with cmp: equal or the block fails
    rows = list(csv.reader(io.StringIO((world["work"] / "patch_applications.csv").read_text())))
    assert rows[0] == [
        "sdk_language",
        "error_signature",
        "description",
        "error_encountered",
        "success",
        "rollback_triggered",
        "context",
        "applied_at",
    ]
    assert sum(1 for r in rows if r[2] == f"Runbook walkthrough {NAME}") == 8 + world.get("reported", 0)


def test_unpatched_errors_and_kpis(world, patch):
    assert "error_pattern" in run(world, "unpatched")
    output = run(world, "kpis")
    table, as_json = output.split("\n[", 1)
    assert [k["kpi"] for k in json.loads("[" + as_json)] == [
        "application_rate",
        "rollback_rate",
        "mttr",
        "coverage",
        "sdk_adoption",
    ]
    assert "sdk_adoption" in table


def test_sdk_configuration(world, patch):
    language, body = CHECKED["sdk-python"]
    assert language == "python"
    result = subprocess.run(
        [sys.executable, "-c", body], cwd=world["work"], env=world["env"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Patches applied: []"


def test_daily_checklist(world, patch):
    output = run(world, "checklist")
    assert re.search(r"^Prometheus alerts\s+\d+ firing\s+none firing\s+(pass|fail)", output, flags=re.M), output
    # The 8 failures of the walkthrough patch in the last hour sink the success rate: the reader is told.
    assert re.search(r"^success rate > 90 % \(24h\)\s+\S+ %\s+> 90 %\s+fail", output, flags=re.M), output
    assert output.rstrip().endswith("at least one item needs attention")
