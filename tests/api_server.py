"""A real `selfheal api` process on a port it binds itself (--port 0, the bound port read from its
log): started by the API and end-to-end tests. No port is picked free here and then released,
which another process could take in between."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.support import wait_until

LISTENING = re.compile(r"listening on http://[^\s\"]+:(\d+)")


@dataclass
class ApiServer:
    url: str
    database_url: str
    process: subprocess.Popen
    log_file: Path
    public_key_pem: str
    patch_namespace: str

    def request(
        self, method: str, path: str, *, body: object = None, token: str | None = None, raw: bytes | None = None
    ) -> tuple[int, dict, dict]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, dict(response.headers), _json(response.read())
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), _json(error.read())

    def token(self, developer: str, role: str = "developer") -> str:
        return selfheal(
            "token", "create", "--developer", developer, "--role", role, database_url=self.database_url
        ).stdout.strip()

    def signing_key(self):
        """The key this server signs with (`selfheal keygen` wrote it beside the log)."""
        from selfheal.core.signing import SigningKey

        return SigningKey.from_pem((self.log_file.parent / "signing.pem").read_bytes())

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=15)


def _json(raw: bytes) -> dict:
    try:
        return json.loads(raw) if raw else {}
    except json.JSONDecodeError:
        return {"raw": raw.decode(errors="replace")}


def selfheal(*args: str, database_url: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "SELFHEAL_DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "selfheal", *args], env=env, capture_output=True, text=True, check=check, timeout=60
    )


def start_api_server(
    *,
    database_url: str,
    kubeconfig: Path,
    patch_namespace: str,
    directory: Path,
    rate: float = 20,
    extra_args: tuple[str, ...] = (),
) -> ApiServer:
    key_file = directory / "signing.pem"
    public_pem = selfheal("keygen", "--out", str(key_file), database_url=database_url).stdout
    log_file = directory / "api.log"
    env = {
        **os.environ,
        "SELFHEAL_DATABASE_URL": database_url,
        "SELFHEAL_SIGNING_KEY_FILE": str(key_file),
        "KUBECONFIG": str(kubeconfig),
    }
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "selfheal",
                "api",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--rate",
                str(rate),
                "--patch-namespace",
                patch_namespace,
                *extra_args,
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def bound_port() -> int | None:
        if process.poll() is not None:
            raise AssertionError(f"selfheal api exited:\n{log_file.read_text(errors='replace')}")
        found = LISTENING.search(log_file.read_text(errors="replace"))
        return int(found.group(1)) if found else None

    port = wait_until(bound_port, timeout=30, what="selfheal api's 'listening on' log line")
    server = ApiServer(
        url=f"http://127.0.0.1:{port}",
        database_url=database_url,
        process=process,
        log_file=log_file,
        public_key_pem=public_pem,
        patch_namespace=patch_namespace,
    )

    def ready():
        if process.poll() is not None:
            raise AssertionError(f"selfheal api exited:\n{server.log()}")
        try:
            return server.request("GET", "/readyz")[0] == 200
        except OSError:
            return False

    wait_until(ready, timeout=30, what="selfheal api ready")
    return server
