"""Every envelope rule of the SDKs once against the real `selfheal api` (real PostgreSQL registry,
real tokens, real signing keys), for both SDKs. tests/sdk and sdk/node/test keep the stub for speed;
here the API itself produces each case, with the settings that make it:

- expiry: an API started with `--envelope-ttl 10`, and an SDK clock 11 s ahead: the envelope the
  API issues has expired when the SDK reads it (the same skew against the default 300 s is fine);
- replay: a registry change that keeps the version (the kill switch, then `selfheal enable`) moves
  the patch's sequence; a proxy then replays the API's own earlier answer, recorded as it passed
  (the API never issues an older sequence itself: a replay comes from the network path, as an
  attacker's would);
- pinned and unknown keys: a second API on the same registry signing with a key of its own: an SDK
  that does not pin it refuses its envelopes; one that pins both keys (a rotation) takes them;
- 503 buffering: an API with the smallest report buffer (`--outcome-buffer 1000`) whose report
  writes wait on a lock held on sdk_patch_applications (a registry slower than the reports): its
  buffer fills, it answers 503 `buffer_full`, the SDK keeps its report and sends it once the
  registry takes writes again.

Refusals are also checked where an operator sees them: the SDK reports them (patch_applied false,
the reason in the context) and the real API records them in sdk_patch_applications.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid

import psycopg
import pytest

from tests.api_server import start_api_server
from tests.e2e.sdk_drivers import LANGUAGES, sdk
from tests.e2e.test_self_healing_loop import kubectl, trusted_keys
from tests.e2e.test_switched_off_or_expired import SIGNATURE, apply_patch
from tests.sdk.payments_server import PaymentsServer
from tests.support import RegistryProxy, wait_until


@pytest.fixture(scope="module")
def served(devenv, registry_api, loop_namespace, operator_database_url):
    """One Ready patch per language: {language: (name, registry id)}; deleted afterwards, so that no
    later test is answered by them."""
    names = {language: f"envelope-rules-{language}" for language in LANGUAGES}
    for language, name in names.items():
        # Severity critical: with its `exact` signature, it outranks any patch another test leaves.
        apply_patch(
            devenv, loop_namespace, name, language, "XOF for an invalid currency (envelope rules)", severity="critical"
        )
    for name in names.values():
        kubectl(devenv, "wait", "-n", loop_namespace, "--for=condition=Ready", f"shp/{name}", "--timeout=60s")
    yield {
        language: (name, registry_row(operator_database_url, loop_namespace, name)["id"])
        for language, name in names.items()
    }
    for name in names.values():
        kubectl(devenv, "delete", "-n", loop_namespace, f"shp/{name}", "--timeout=60s")


@pytest.fixture()
def payments():
    with PaymentsServer() as server:
        server.behaviour.clock_tolerance = 120  # the SDK's clock may run 11 s ahead; HMAC must still pass
        yield server


@pytest.fixture()
def clients(tmp_path):
    """Opens SDK clients (`open(language, ...)`) and closes them all after the test."""
    opened = []

    def open_client(language: str, payments, **options):
        log_dir = tmp_path / f"sdk-{len(opened)}"
        log_dir.mkdir()
        client = sdk(language, payments, log_dir=log_dir, **options)
        opened.append(client)
        return client

    yield open_client
    for client in opened:
        client.close()


@pytest.fixture()
def api_with(operator_database_url, devenv, loop_namespace, tmp_path):
    """Starts another `selfheal api` on the same registry, with its own signing key and the given flags."""
    started = []

    def start(*flags: str):
        directory = tmp_path / f"api-{len(started)}"
        directory.mkdir()
        server = start_api_server(
            database_url=operator_database_url,
            kubeconfig=devenv.kubeconfig,
            patch_namespace=loop_namespace,
            directory=directory,
            rate=1000,
            extra_args=flags,
        )
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def registry_row(database_url: str, namespace: str, name: str) -> dict:
    with psycopg.connect(database_url, row_factory=psycopg.rows.dict_row) as conn:
        found = conn.execute(
            "SELECT * FROM sdk_self_healing_registry WHERE source_namespace = %s AND source_name = %s",
            (namespace, name),
        ).fetchone()
    assert found is not None, f"{namespace}/{name} not in the registry"
    return found


def selfheal_cli(devenv, database_url: str, *args: str) -> None:
    env = {**os.environ, "KUBECONFIG": str(devenv.kubeconfig), "SELFHEAL_DATABASE_URL": database_url}
    result = subprocess.run(
        [sys.executable, "-m", "selfheal", *args], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def developer(what: str) -> str:
    return f"envelope-{what}-{uuid.uuid4().hex[:8]}"


def recorded_refusals(database_url: str, developer_id: str) -> list[str]:
    """The reasons of the refusals this developer's SDK reported, as the registry recorded them."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            """SELECT context->>'reason' FROM sdk_patch_applications
               WHERE developer_id = %s AND NOT patch_applied AND patch_id IS NULL""",
            (developer_id,),
        ).fetchall()
    return [reason for (reason,) in rows if reason]


def wait_refusal(database_url: str, developer_id: str, fragment: str) -> str:
    return wait_until(
        lambda: next((r for r in recorded_refusals(database_url, developer_id) if fragment in r), None),
        what=f"the refusal ({fragment!r}) recorded for {developer_id}",
    )


@pytest.mark.parametrize("language", LANGUAGES)
def test_an_envelope_expired_on_arrival_is_refused(
    language, served, registry_api, api_with, payments, clients, operator_database_url
):
    _, ours = served[language]
    short = api_with("--envelope-ttl", "10")
    who = developer(f"expiry-{language}")
    client = clients(language, payments, selfheal_url=short.url, token=short.token(who), trusted=trusted_keys(short))
    healed = client.pay()
    assert (healed.currency, healed.applied) == ("XOF", [ours])
    late = client.pay(later=11)  # the SDK's clock 11 s ahead: the API's 10 s envelope has expired
    assert (late.currency, late.error_code, late.applied) == (None, "invalid_currency", [ours])
    assert any(f"patch {ours} envelope expired at" in line for line in late.warnings), late.warnings
    assert f"patch {ours} envelope expired at" in wait_refusal(operator_database_url, who, "expired")

    # The same skew with the default lifetime (300 s): accepted. The TTL made the refusal, not the skew.
    control = clients(
        language,
        payments,
        selfheal_url=registry_api.url,
        token=registry_api.token(developer(f"expiry-control-{language}")),
        trusted=trusted_keys(registry_api),
    )
    assert control.pay(later=11).currency == "XOF"


class ReplayingProxy(RegistryProxy):
    """Forwards to the registry API, keeping the last lookup answer it passed on; with `replay` set,
    answers lookups with those recorded bytes instead (reports are always forwarded)."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream)
        self.last_answer, self.replay, self.replayed = None, None, 0

    def answer(self, path, forward):
        lookup = path == "/api/dev/self-heal"
        if lookup and self.replay is not None:
            self.replayed += 1
            return 200, self.replay
        status, answer = forward()
        if lookup and status == 200:
            self.last_answer = answer
        return status, answer


def signed_payload(answer: bytes) -> dict:
    return json.loads(base64.b64decode(json.loads(answer)["envelope"]["payload"]))


def served_sequence(api, token: str, language: str) -> int | None:
    body = {"sdk": language, "error": SIGNATURE, "status": 400, "code": "invalid_currency"}
    status, _, answer = api.request("POST", "/api/dev/self-heal", token=token, body=body)
    return json.loads(base64.b64decode(answer["envelope"]["payload"]))["sequence"] if status == 200 else None


@pytest.mark.parametrize("language", LANGUAGES)
def test_an_older_envelope_replayed_is_refused(
    language, served, devenv, loop_namespace, registry_api, payments, clients, operator_database_url
):
    name, ours = served[language]
    who = developer(f"replay-{language}")
    with ReplayingProxy(registry_api.url) as proxy:
        client = clients(
            language,
            payments,
            selfheal_url=proxy.url,
            token=registry_api.token(who),
            trusted=trusted_keys(registry_api),
        )
        assert client.pay().applied == [ours]
        recorded = proxy.last_answer
        old = signed_payload(recorded)
        assert old["patch_id"] == ours

        # A registry change that keeps the version: the runbook's kill switch, then `selfheal enable`.
        for verb in (["disable", "--reason", "replay test"], ["enable"]):
            selfheal_cli(devenv, operator_database_url, verb[0], f"{loop_namespace}/{name}", *verb[1:])
        row = wait_until(
            lambda: (
                (r := registry_row(operator_database_url, loop_namespace, name))["active"]
                and r["sequence"] > old["sequence"]
                and r
            ),
            what="the registry row active again, with a new sequence",
        )
        assert row["version"] == old["version"]  # so only the sequence can refuse the replay
        probe = registry_api.token(developer(f"replay-probe-{language}"))
        wait_until(
            lambda: served_sequence(registry_api, probe, language) == row["sequence"],
            what="the API serving the new sequence",
        )
        assert client.pay().applied == [ours, ours]
        newer = signed_payload(proxy.last_answer)
        assert (newer["sequence"], newer["version"]) == (row["sequence"], old["version"])

        proxy.replay = recorded  # the API's own earlier answer, validly signed, not expired
        replayed = client.pay()
        assert proxy.replayed == 1
        assert (replayed.currency, replayed.error_code, replayed.applied) == (None, "invalid_currency", [ours, ours])
        reason = f"patch {ours} sequence {old['sequence']} is lower than {newer['sequence']}, seen before"
        assert any(reason in line for line in replayed.warnings), replayed.warnings
        assert reason in wait_refusal(operator_database_url, who, "is lower than")

        # A client that never saw the newer one takes the very same bytes: the replay rule refused them.
        fresh = clients(
            language,
            payments,
            selfheal_url=proxy.url,
            token=registry_api.token(developer(f"replay-fresh-{language}")),
            trusted=trusted_keys(registry_api),
        )
        assert fresh.pay().currency == "XOF" and proxy.replayed == 2


@pytest.mark.parametrize("language", LANGUAGES)
def test_only_envelopes_signed_by_a_pinned_key_are_applied(
    language, served, registry_api, api_with, payments, clients, operator_database_url
):
    _, ours = served[language]
    other = api_with()  # the same registry, its own signing key (`selfheal keygen`)
    current, unknown = trusted_keys(registry_api), trusted_keys(other)
    assert current.keys() != unknown.keys()
    who = developer(f"unknown-key-{language}")
    pinned = clients(language, payments, selfheal_url=other.url, token=other.token(who), trusted=current)
    refused = pinned.pay()
    assert (refused.currency, refused.error_code, refused.applied) == (None, "invalid_currency", [])
    assert any("no valid signature from a trusted key" in line for line in refused.warnings), refused.warnings
    wait_refusal(operator_database_url, who, "no valid signature from a trusted key")

    # The key it pins: applied (the same client, the API signing with that key).
    same = clients(language, payments, selfheal_url=registry_api.url, token=registry_api.token(who), trusted=current)
    assert same.pay().applied == [ours]
    # A rotation: the current and the next key pinned, the API signing with the next one.
    rotating = clients(
        language,
        payments,
        selfheal_url=other.url,
        token=other.token(developer(f"rotation-{language}")),
        trusted={**current, **unknown},
    )
    healed = rotating.pay()
    assert (healed.currency, healed.applied) == ("XOF", [ours])


@pytest.mark.parametrize("language", LANGUAGES)
def test_reports_answered_503_are_kept_and_sent_when_the_registry_takes_them(
    language, served, api_with, payments, clients, operator_database_url
):
    _, ours = served[language]
    small = api_with("--outcome-buffer", "1000")
    filler = small.token(developer("filler"))
    who = developer(f"buffered-{language}")
    client = clients(language, payments, selfheal_url=small.url, token=small.token(who), trusted=trusted_keys(small))
    misses = {"sdk": language, "error": "envelope-rules buffer filler", "success": False, "patch_applied": False}

    def post_reports(count: int) -> tuple[int, dict]:
        status, _, answer = small.request(
            "POST", "/api/dev/self-heal/reports", token=filler, body={"reports": [misses] * count}
        )
        return status, answer

    with psycopg.connect(operator_database_url) as lock:
        # Writes into sdk_patch_applications wait on this lock: the API's COPY hangs, its buffer holds.
        lock.execute("LOCK TABLE sdk_patch_applications IN SHARE MODE")
        assert post_reports(500)[0] == 202 and post_reports(1)[0] == 202
        # 501 rows wait: a batch of up to 500 more no longer fits in 1,000. The API says so itself.
        status, answer = post_reports(1)  # after the API's 2 s wait for room, within the SDK's 5 s timeout
        assert (status, answer["error"]) == (503, "buffer_full"), answer

        healed = client.pay()
        assert (healed.currency, healed.applied) == ("XOF", [ours])
        assert client.flush() is False  # 503: kept
        assert client.pending() == 1
        assert reported(operator_database_url, who) == []
        lock.rollback()  # the registry takes writes again

    assert wait_until(client.flush, timeout=30, what="the kept report accepted")
    assert client.pending() == 0
    assert wait_until(lambda: reported(operator_database_url, who), what="the report in the registry") == [
        (ours, True, True)
    ]


def reported(database_url: str, developer_id: str) -> list[tuple]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT patch_id, success, patch_applied FROM sdk_patch_applications WHERE developer_id = %s",
            (developer_id,),
        ).fetchall()
