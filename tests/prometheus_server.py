"""A real Prometheus (Debian's `prometheus` package) evaluating given rules every second."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from tests.support import free_port, wait_until


def alerts(url: str) -> list[dict]:
    with urllib.request.urlopen(url + "/api/v1/alerts", timeout=2) as response:
        return json.load(response)["data"]["alerts"]


@contextmanager
def prometheus(
    directory: Path, rules: str, *, wait_for_firing: bool = False, scrape: Sequence[str] = ()
) -> Iterator[str]:
    """`scrape`: host:port targets whose /metrics are scraped every second (job `devportal`)."""
    (directory / "rules.yml").write_text(rules)
    config = {"global": {"evaluation_interval": "1s", "scrape_interval": "1s"}, "rule_files": ["rules.yml"]}
    if scrape:
        config["scrape_configs"] = [{"job_name": "devportal", "static_configs": [{"targets": list(scrape)}]}]
    (directory / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
    port = free_port()
    log_path = directory / "prometheus.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={directory / 'prometheus.yml'}",
                f"--storage.tsdb.path={directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"

    def ready():
        assert process.poll() is None, log_path.read_text()
        try:
            found = alerts(url)
        except OSError:
            return False
        return not wait_for_firing or any(a["state"] == "firing" for a in found)

    try:
        wait_until(ready, timeout=60, what="Prometheus ready")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
