"""`selfheal compile` and `selfheal check`, run as the commands people and pipelines run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BROKEN = Path(__file__).resolve().parent / "broken"


def selfheal(*args: str, stdin: bytes = b"", env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "selfheal", *args], input=stdin, capture_output=True, timeout=60, env=env
    )


def test_compile_prints_the_operations():
    result = selfheal(
        "compile",
        "--language",
        "node",
        stdin='this.baseUrl = "https://api-backup.molam.com"; console.warn("⚡ Fallback to backup API");'.encode(),
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["operations"][0] == {"op": "set", "setting": "base_url", "value": "https://api-backup.molam.com"}
    assert result.stdout.decode().strip() == json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )


def test_compile_refuses_with_line_column_and_reason():
    result = selfheal("compile", "--language", "python", stdin=b"self.timeout = 30\nimport os\n")
    assert (result.returncode, result.stdout) == (1, b"")
    assert result.stderr.decode().strip() == "2:1: imports are not allowed"


def test_compile_refuses_huge_and_binary_input_cleanly():
    result = selfheal("compile", "--language", "node", stdin=b"[" * 1_000_000)
    assert result.returncode == 1 and b"longer than 8192 characters" in result.stderr
    result = selfheal("compile", "--language", "node", stdin=b"\xff\xfe")
    assert result.returncode == 1 and b"not UTF-8" in result.stderr


def test_compile_takes_the_allowed_hosts_setting():
    code = b'self.base_url = "https://eu.api.molam.com"'
    assert selfheal("compile", "-l", "python", stdin=code).returncode == 1
    assert selfheal("compile", "-l", "python", "--allowed-host", "*.api.molam.com", stdin=code).returncode == 0
    env = {**__import__("os").environ, "SELFHEAL_ALLOWED_HOSTS": "api.molam.com,eu.api.molam.com"}
    assert selfheal("compile", "-l", "python", stdin=code, env=env).returncode == 0
    bad = selfheal("compile", "-l", "python", "--allowed-host", "EVIL COM", stdin=code)
    assert bad.returncode == 2 and b"allowed host" in bad.stderr


def test_check_passes_on_the_samples():
    result = selfheal("check", str(ROOT / "samples"))
    assert result.returncode == 0, result.stdout.decode()
    assert b"checked 14 SelfHealPatch document(s) in 14 file(s): no problem(s)" in result.stderr


def test_check_names_every_problem_of_a_broken_folder():
    result = selfheal("check", str(BROKEN))
    assert result.returncode == 1
    lines = sorted(line.replace(str(BROKEN) + "/", "") for line in result.stdout.decode().splitlines())
    assert [line.split(": ")[0] + ": " + line.split(": ")[1] for line in lines] == [
        "bad-code.yaml:11: spec.patchCode",  # the code's own line inside the block scalar
        "bad-code.yaml:12: spec.rollbackCode",
        "bad-code.yaml:30: spec.patchCode",
        "bad-code.yaml:33: spec.version",
        "bad-schema.yaml:11: spec.surprise",
        "bad-schema.yaml:6: spec.sdkLanguage",
        "bad-yaml.yml:4: yaml",
    ]
    text = result.stdout.decode()
    assert "not on the allowed host list" in text and "looks like an API key" in text and "require" in text
    assert "unrelated" not in text  # the ConfigMap is not a SelfHealPatch


def test_check_takes_files_and_reports_missing_paths():
    assert selfheal("check", str(ROOT / "samples" / "node-429-backoff.yaml")).returncode == 0
    assert selfheal("check", str(ROOT / "no-such-folder")).returncode == 2


def test_compile_hints_at_the_other_language_when_the_code_is_plainly_that_one():
    node_code = b'this.baseUrl = "https://api-backup.molam.com";'
    result = selfheal("compile", "--language", "python", stdin=node_code)
    assert result.returncode == 1
    assert "(hint: this is node patch code; try --language node)" in result.stderr.decode()
    python_code = b'self.base_url = "https://api-backup.molam.com"'
    result = selfheal("compile", "--language", "node", stdin=python_code)
    assert "(hint: this is python patch code; try --language python)" in result.stderr.decode()
    # Code that is no patch in either language gets no hint.
    result = selfheal("compile", "--language", "python", stdin=b"import os")
    assert result.returncode == 1 and "hint" not in result.stderr.decode()


def test_check_refuses_an_empty_file_and_a_look_alike_kind(tmp_path: Path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    look_alike = tmp_path / "typo.yaml"
    look_alike.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: other}\n---\n"
        "apiVersion: selfheal.molam.io/v1alpha1\nkind: SelfhealPatch\nmetadata: {name: typo}\nspec: {}\n"
    )
    result = selfheal("check", str(empty), str(look_alike))
    assert result.returncode == 1
    assert f"{empty}:1: file: empty" in result.stdout.decode()
    assert f"{look_alike}:5: kind: 'SelfhealPatch' is not 'SelfHealPatch'" in result.stdout.decode()
    assert "ConfigMap" not in result.stdout.decode()  # other kinds are still skipped
