"""The registry API over real HTTP against the real registry."""

from __future__ import annotations

import psycopg
import pytest

from tests.api_server import LISTENING, selfheal
from tests.support import wait_until

RUNBOOK_TEST_BODY = {"sdk": "node", "error": "401 Unauthorized", "status": 401, "context": {"test": True}}


def test_public_routes_need_no_token(api_server):
    assert api_server.request("GET", "/healthz")[0] == 200
    assert api_server.request("GET", "/readyz")[0] == 200
    status, headers, body = api_server.request("GET", "/metrics")
    assert status == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/api/dev/self-heal"), ("POST", "/api/dev/self-heal/reports"), ("GET", "/api/dev/patches")],
)
def test_every_private_route_needs_a_valid_token(api_server, method, path):
    status, headers, body = api_server.request(method, path, body={})
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
    assert api_server.request(method, path, body={}, token="shk_nope_nope")[0] == 401


def test_revoked_token_is_refused(api_server):
    token = api_server.token("dev-revoked")
    assert api_server.request("GET", "/api/dev/patches", token=token)[0] == 200
    selfheal("token", "revoke", token, database_url=api_server.database_url)
    # Revocation reaches the API within its token cache lifetime.
    wait_until(
        lambda: api_server.request("GET", "/api/dev/patches", token=token)[0] == 401,
        timeout=15,
        what="revoked token refused",
    )


def test_miss_is_404_and_recorded_for_the_unpatched_errors_report(api_server):
    token = api_server.token("dev-miss")
    status, _, body = api_server.request("POST", "/api/dev/self-heal", body=RUNBOOK_TEST_BODY, token=token)
    assert status == 404 and body["error"] == "no_patch" and body["recorded"] is True

    def recorded():
        with psycopg.connect(api_server.database_url) as conn:
            return conn.execute(
                "SELECT developer_id, sdk_language, error_encountered, patch_applied, context"
                " FROM sdk_patch_applications WHERE developer_id = 'dev-miss'"
            ).fetchall()

    rows = wait_until(recorded, what="miss recorded")
    assert rows == [("dev-miss", "node", "401 Unauthorized", False, {"test": True})]
    wait_until(lambda: '"matched_by": "miss"' in api_server.log(), what="self-heal log line for the miss")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"error": "x"}, "sdk"),
        ({"sdk": "ruby", "error": "x"}, "sdk"),
        ({"sdk": "node", "error": ""}, "error"),
        ({"sdk": "node", "error": "x", "status": 999}, "status"),
        ({"sdk": "node", "error": "x" * 2001}, "error"),
    ],
)
def test_bad_bodies_are_400_naming_the_field(api_server, body, field):
    token = api_server.token("dev-bad")
    status, _, answer = api_server.request("POST", "/api/dev/self-heal", body=body, token=token)
    assert status == 400 and field in [f["field"] for f in answer["fields"]], answer


def test_malformed_json_is_400_and_oversized_is_413(api_server):
    token = api_server.token("dev-json")
    assert api_server.request("POST", "/api/dev/self-heal", raw=b"{not json", token=token)[0] == 400
    huge = b'{"sdk": "node", "error": "' + b"x" * (70 * 1024) + b'"}'
    assert api_server.request("POST", "/api/dev/self-heal", raw=huge, token=token)[0] == 413


def test_a_body_over_max_body_is_413_whether_it_arrived_whole_or_is_still_arriving(
    fresh_database, devenv, kube_client, tmp_path
):
    """A body that fits in the packet of its headers is read without awaiting (app._arrived_body):
    the limit holds there too, on both routes that take a body, and a body within it is served."""
    from tests.api_server import start_api_server
    from tests.support import new_namespace

    server = start_api_server(
        database_url=fresh_database,
        kubeconfig=devenv.kubeconfig,
        patch_namespace=new_namespace(kube_client, "maxbody"),
        directory=tmp_path,
        extra_args=("--max-body", "1024"),
    )
    try:
        token = server.token("dev-max-body")
        over = b'{"sdk": "node", "error": "' + b"x" * 1100 + b'"}'
        assert server.request("POST", "/api/dev/self-heal", raw=over, token=token)[0] == 413
        reports = b'{"reports": [{"sdk": "node", "success": false, "error": "' + b"x" * 1100 + b'"}]}'
        assert server.request("POST", "/api/dev/self-heal/reports", raw=reports, token=token)[0] == 413
        within = b'{"sdk": "node", "error": "' + b"x" * 900 + b'"}'
        assert server.request("POST", "/api/dev/self-heal", raw=within, token=token)[0] == 404
        still_arriving = b'{"sdk": "node", "error": "' + b"x" * 300_000 + b'"}'
        assert server.request("POST", "/api/dev/self-heal", raw=still_arriving, token=token)[0] == 413
    finally:
        server.stop()


def test_the_rate_option_sets_each_tokens_bucket(fresh_database, devenv, kube_client, tmp_path):
    """--rate R: a burst of 2R (at least 1), then 429. The exact counts, on a controlled clock, are
    tests/api/test_rate_limits.py's; here at 0.1 a second a token comes back only after 10 s."""
    from tests.api_server import start_api_server
    from tests.support import new_namespace

    server = start_api_server(
        database_url=fresh_database,
        kubeconfig=devenv.kubeconfig,
        patch_namespace=new_namespace(kube_client, "rate"),
        directory=tmp_path,
        rate=0.1,
    )
    try:
        token = server.token("dev-burst")
        answers = [server.request("GET", "/api/dev/patches", token=token) for _ in range(2)]
        assert [status for status, _, _ in answers] == [200, 429]
        assert int(answers[1][1]["Retry-After"]) >= 9
    finally:
        server.stop()


def test_reports_take_the_developer_from_the_token(api_server):
    token = api_server.token("dev-reporter")
    batch = {
        "reports": [
            {
                "sdk": "python",
                "error": "KeyError: amount",
                "success": False,
                "patch_applied": False,
                "developer_id": "forged",
                "context": {"n": index},
            }
            for index in range(3)
        ]
    }
    status, _, body = api_server.request("POST", "/api/dev/self-heal/reports", body=batch, token=token)
    assert (status, body) == (202, {"accepted": 3, "rejected": []})

    def rows():
        with psycopg.connect(api_server.database_url) as conn:
            return conn.execute(
                "SELECT developer_id FROM sdk_patch_applications WHERE error_encountered = 'KeyError: amount'"
            ).fetchall()

    assert wait_until(lambda: len(rows()) == 3 and rows()) == [("dev-reporter",)] * 3


def test_reports_for_unknown_patches_are_refused(api_server):
    token = api_server.token("dev-unknown")
    batch = {"reports": [{"patch_id": "no-such-patch", "sdk": "node", "error": "x", "success": True}]}
    status, _, body = api_server.request("POST", "/api/dev/self-heal/reports", body=batch, token=token)
    assert status == 400 and body["error"] == "unknown_patch"
    mixed = {
        "reports": [
            {"sdk": "node", "error": "known-less miss", "success": False, "patch_applied": False},
            {"patch_id": "no-such-patch", "sdk": "node", "error": "x", "success": True},
        ]
    }
    status, _, body = api_server.request("POST", "/api/dev/self-heal/reports", body=mixed, token=token)
    assert status == 202 and body["accepted"] == 1
    assert body["rejected"] == [{"index": 1, "field": "reports.1.patch_id", "reason": "unknown patch id"}]


def test_openapi_document_is_served_kept_in_the_repository_and_lists_every_route(api_server):
    import json
    from pathlib import Path

    from selfheal.api.app import ApiSettings, build_app
    from selfheal.core.signing import SigningKey

    status, _, served = api_server.request("GET", "/openapi.json")
    committed = json.loads((Path(__file__).resolve().parents[2] / "docs" / "openapi.json").read_text())
    assert status == 200 and served == committed, "regenerate docs/openapi.json from selfheal.api.openapi"
    app = build_app(ApiSettings(database_url="postgresql://unused", signing_key=SigningKey.generate()))
    routes = {(route.resource.canonical, route.method.lower()) for route in app.router.routes()}
    documented = {(path, method) for path, methods in committed["paths"].items() for method in methods}
    assert routes - {(path, "head") for path, _ in routes} == documented


def test_reports_beyond_the_buffer_wait_then_get_503_and_nothing_accepted_is_lost(
    fresh_database, devenv, kube_client, tmp_path
):
    from tests.api_server import start_api_server
    from tests.support import new_namespace

    server = start_api_server(
        database_url=fresh_database,
        kubeconfig=devenv.kubeconfig,
        patch_namespace=new_namespace(kube_client, "buffer"),
        directory=tmp_path,
        rate=1000,
        extra_args=("--report-buffer", "1000"),
    )
    try:
        token = server.token("dev-buffer")
        batch = {
            "reports": [
                {"sdk": "node", "error": f"buffered {index}", "success": False, "patch_applied": False}
                for index in range(250)
            ]
        }
        with psycopg.connect(fresh_database) as blocker:
            # The writers' COPY waits behind this lock: the buffer can only fill.
            blocker.execute("LOCK TABLE sdk_patch_applications IN ACCESS EXCLUSIVE MODE")
            answers = [server.request("POST", "/api/dev/self-heal/reports", body=batch, token=token) for _ in range(5)]
            # Room is kept for a largest batch (500): the fourth waits its 2 s, then is refused.
            assert [status for status, _, _ in answers] == [202, 202, 202, 503, 503]
            assert answers[3][1]["Retry-After"] == "5" and answers[3][2]["error"] == "buffer_full"
        # Lock released: the accepted batches are written, none of the refused ones.

        def written() -> int:
            with psycopg.connect(fresh_database) as conn:
                return conn.execute(
                    "SELECT count(*) FROM sdk_patch_applications WHERE developer_id = 'dev-buffer'"
                ).fetchone()[0]

        wait_until(lambda: written() == 750, timeout=30, what="accepted reports written")
    finally:
        server.stop()


def test_port_0_serves_on_the_port_it_logs_and_a_taken_port_is_a_clear_error(api_server, tmp_path):
    # api_server was started with --port 0: it serves on the one port its log names.
    [line] = [line for line in api_server.log().splitlines() if "listening on http://" in line]
    port = int(LISTENING.search(line).group(1))
    assert api_server.url == f"http://127.0.0.1:{port}" and api_server.request("GET", "/healthz")[0] == 200
    assert "0: any free port" in " ".join(
        selfheal("api", "--help", database_url=api_server.database_url).stdout.split()
    )

    key = tmp_path / "signing.pem"
    selfheal("keygen", "--out", str(key), database_url=api_server.database_url)
    taken = selfheal(
        "api",
        "--signing-key",
        str(key),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-migrate",
        database_url=api_server.database_url,
        check=False,
    )
    assert taken.returncode == 2, taken.stderr
    assert f"--host 127.0.0.1 --port {port}: cannot listen there" in taken.stderr, taken.stderr
