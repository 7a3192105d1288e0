"""`selfheal compile` and `selfheal check`, run as the commands people and pipelines run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BROKEN = Path(__file__).resolve().parent / "broken"


def selfheal(*args: str, stdin: bytes = b"", env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "selfheal", *args], input=stdin, capture_output=True,
                          timeout=60, env=env)


def test_compile_prints_the_operations():
    result = selfheal("compile", "--language", "node",
                      stdin='this.baseUrl = "https://api-backup.molam.com"; console.warn("⚡ Fallback to backup API");'
                      .encode())
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["operations"][0] == {"op": "set", "setting": "base_url", "value": "https://api-backup.molam.com"}
    assert result.stdout.decode().strip() == json.dumps(document, sort_keys=True, separators=(",", ":"),
                                                        ensure_ascii=False)


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
