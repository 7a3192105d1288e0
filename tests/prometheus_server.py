"""A real Prometheus (Debian's `prometheus` package) evaluating given rules every second."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from tests.support import free_port, wait_until


def alerts(url: str) -> list[dict]:
    with urllib.request.urlopen(url + "/api/v1/alerts", timeout=2) as response:
        return json.load(response)["data"]["alerts"]


@contextmanager
def prometheus(directory: Path, rules: str, *, wait_for_firing: bool = False) -> Iterator[str]:
    (directory / "rules.yml").write_text(rules)
    (directory / "prometheus.yml").write_text("global:\n  evaluation_interval: 1s\nrule_files:\n  - rules.yml\n")
    port = free_port()
    log_path = directory / "prometheus.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(["prometheus", f"--config.file={directory / 'prometheus.yml'}",
                                    f"--storage.tsdb.path={directory / 'data'}",
                                    f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
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
