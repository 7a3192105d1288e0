"""A real Prometheus (Debian's `prometheus` package) evaluating given rules every second.

It listens on a port it binds itself (127.0.0.1:0) and logs it (`msg="Listening on"
address=127.0.0.1:PORT`): no port is picked free here and then released for another to take."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from tests.support import wait_until

LISTENING = re.compile(r'msg="Listening on" address=127\.0\.0\.1:(\d+)')


def alerts(url: str) -> list[dict]:
    with urllib.request.urlopen(url + "/api/v1/alerts", timeout=2) as response:
        return json.load(response)["data"]["alerts"]


def rule_groups(url: str) -> list[dict]:
    """Every loaded group with its rules' state, health and last evaluation (`/api/v1/rules`)."""
    with urllib.request.urlopen(url + "/api/v1/rules", timeout=2) as response:
        return json.load(response)["data"]["groups"]


def query(url: str, expr: str) -> list[dict]:
    """An instant query's result vector."""
    with urllib.request.urlopen(url + "/api/v1/query?" + urllib.parse.urlencode({"query": expr}), timeout=5) as r:
        return json.load(r)["data"]["result"]


@contextmanager
def prometheus(
    directory: Path,
    rules: str,
    *,
    wait_for_firing: bool = False,
    scrape: Sequence[str] = (),
    jobs: Mapping[str, Sequence[str]] | None = None,
) -> Iterator[str]:
    """`scrape`: host:port targets whose /metrics are scraped every second (job `devportal`);
    `jobs`: the same, by job name (the shipped alerts tell the operator and the API apart by job)."""
    (directory / "rules.yml").write_text(rules)
    config = {"global": {"evaluation_interval": "1s", "scrape_interval": "1s"}, "rule_files": ["rules.yml"]}
    targets = {**({"devportal": list(scrape)} if scrape else {}), **(jobs or {})}
    if targets:
        config["scrape_configs"] = [
            {"job_name": job, "static_configs": [{"targets": list(hosts)}]} for job, hosts in targets.items()
        ]
    (directory / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
    log_path = directory / "prometheus.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={directory / 'prometheus.yml'}",
                f"--storage.tsdb.path={directory / 'data'}",
                "--web.listen-address=127.0.0.1:0",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def bound_port() -> int | None:
        assert process.poll() is None, log_path.read_text()
        found = LISTENING.search(log_path.read_text(errors="replace"))
        return int(found.group(1)) if found else None

    def ready():
        assert process.poll() is None, log_path.read_text()
        try:
            found = alerts(url)
        except OSError:
            return False
        return not wait_for_firing or any(a["state"] == "firing" for a in found)

    try:
        url = f"http://127.0.0.1:{wait_until(bound_port, timeout=60, what='Prometheus listening')}"
        wait_until(ready, timeout=60, what="Prometheus ready")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
