"""A real Prometheus (Debian's `prometheus` package) evaluating given rules every second.

It listens on a port it binds itself (127.0.0.1:0) and logs it (`msg="Listening on"
address=127.0.0.1:PORT`): no port is picked free here and then released for another to take."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from tests.support import wait_until

LISTENING = re.compile(r'msg="Listening on" address=127\.0\.0\.1:(\d+)')


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
