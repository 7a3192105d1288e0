"""`selfheal operator` and `selfheal api` run from the image, as the Deployments run them.

The security context is the manifests' (manifests/base/operator.yaml, api.yaml): user 65532,
read-only root filesystem with an emptyDir-like /tmp, every capability dropped, no privilege
escalation, and no writable HOME (HOME is `/`, read-only). `--network host` lets the containers
reach the test world's kube-apiserver and PostgreSQL on the loopback address.

Each container runs in the foreground of a `podman run` process: its output is the log file, and
the signals the tests send to that process reach `selfheal` (PID 1 in the container), as the
kubelet's would.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from hack.image import build as image_build
from tests.api_server import ApiServer, selfheal
from tests.support import OperatorProcess, free_port, wait_until

USER = "65532:65532"
KUBECONFIG = "/etc/selfheal/kube/config"
SIGNING_KEY = "/etc/selfheal/signing/signing.pem"


def podman(*args: str, input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        image_build.podman_command(*args),
        env=image_build.podman_env(),
        capture_output=True,
        text=True,
        input=input,
        timeout=timeout,
    )


def run_args(
    image: str,
    *args: str,
    name: str,
    env: dict[str, str] | None = None,
    files: dict[Path, str] | None = None,
    entrypoint: str | None = None,
) -> list[str]:
    """`run` of the image with the Deployments' security context; `files` mounted read-only, stdin open."""
    options = [
        "run",
        "--rm",
        "--interactive",
        "--name",
        name,
        "--network",
        "host",
        "--user",
        USER,
        # As a kubelet does: the image's own /etc/passwd, no entry added for the user (kopf looks it up).
        "--passwd=false",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--read-only",
        "--read-only-tmpfs=false",
        "--tmpfs",
        "/tmp:rw,size=64m",
    ]
    for key, value in (env or {}).items():
        options += ["--env", f"{key}={value}"]
    for source, target in (files or {}).items():
        options += ["--volume", f"{source}:{target}:ro"]
    if entrypoint:
        options += ["--entrypoint", entrypoint]
    return [*options, image, *args]


def run_command(image: str, *args: str, **options) -> list[str]:
    return image_build.podman_command(*run_args(image, *args, **options))


def readable_by_the_container(source: Path, directory: Path) -> Path:
    """A copy owned by the container's user, mode 0400: what a Secret volume gives the pod's user."""
    directory.mkdir(parents=True, exist_ok=True)
    copy = directory / source.name
    shutil.copyfile(source, copy)
    uid, gid = (int(part) for part in USER.split(":"))
    shutil.chown(copy, uid, gid)
    copy.chmod(0o400)
    return copy


def remove(name: str) -> None:
    podman("rm", "--force", "--ignore", name)


def container_name(role: str) -> str:
    return f"selfheal-test-{role}-{uuid.uuid4().hex[:8]}"


class OperatorContainer(OperatorProcess):
    """The session's operator (tests.support.OperatorProcess), but from the image."""

    def __init__(
        self, *, image: str, kubeconfig: Path, database_url: str, log_file: Path, extra_args: tuple[str, ...] = ()
    ) -> None:
        super().__init__(kubeconfig=kubeconfig, database_url=database_url, log_file=log_file, extra_args=extra_args)
        self.image, self.name = image, container_name("operator")
        self.mounted_kubeconfig = readable_by_the_container(kubeconfig, log_file.parent / "kube")

    def start(self, *, timeout: float = 90.0) -> None:
        self.ports = {"--liveness-port": free_port()}
        command = run_command(
            self.image,
            "operator",
            "--registry-poll-interval",
            "0.5",
            "--liveness-port",
            str(self.port),
            *self.extra_args,
            name=self.name,
            env={"KUBECONFIG": KUBECONFIG, "SELFHEAL_DATABASE_URL": self.database_url},
            files={self.mounted_kubeconfig: KUBECONFIG},
        )
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(command, env=image_build.podman_env(), stdout=log, stderr=subprocess.STDOUT)
        wait_until(self._healthy, timeout=timeout, what=f"operator container liveness (log: {self.log_file})")

    def stop(self) -> None:
        """SIGTERM, as the kubelet stops a pod; the base class's SIGINT is a person's Ctrl-C."""
        try:
            if self.process is not None and self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=10)
        finally:
            remove(self.name)


def start_api_container(
    *, image: str, database_url: str, kubeconfig: Path, patch_namespace: str, directory: Path, rate: float = 20
) -> ApiServer:
    """`selfheal api` from the image, returned as the tests' ApiServer (tests/api_server.py)."""
    key_file = directory / "signing.pem"
    public_pem = selfheal("keygen", "--out", str(key_file), database_url=database_url).stdout
    secrets = directory / "mounted"
    port, name, log_file = free_port(), container_name("api"), directory / "api.log"
    command = run_command(
        image,
        "api",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--rate",
        str(rate),
        "--patch-namespace",
        patch_namespace,
        name=name,
        env={"SELFHEAL_DATABASE_URL": database_url, "SELFHEAL_SIGNING_KEY_FILE": SIGNING_KEY, "KUBECONFIG": KUBECONFIG},
        files={
            readable_by_the_container(key_file, secrets / "signing"): SIGNING_KEY,
            readable_by_the_container(kubeconfig, secrets / "kube"): KUBECONFIG,
        },
    )
    with log_file.open("wb") as log:
        process = subprocess.Popen(command, env=image_build.podman_env(), stdout=log, stderr=subprocess.STDOUT)
    server = ApiContainer(
        url=f"http://127.0.0.1:{port}",
        database_url=database_url,
        process=process,
        log_file=log_file,
        public_key_pem=public_pem,
        patch_namespace=patch_namespace,
        name=name,
    )

    def ready():
        if process.poll() is not None:
            raise AssertionError(f"selfheal api container exited:\n{server.log()}")
        try:
            return server.request("GET", "/readyz")[0] == 200
        except OSError:
            return False

    wait_until(ready, timeout=60, what="selfheal api container ready")
    return server


@dataclass
class ApiContainer(ApiServer):
    name: str = ""

    def stop(self) -> None:
        try:
            super().stop()
        finally:
            remove(self.name)
