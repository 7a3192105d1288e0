"""The local test world with real parts: etcd, kube-apiserver, kubectl, PostgreSQL.

Nothing is skipped: if a part cannot be built or started, these tests fail.
The first run on a fresh machine builds the Go binaries (~5 min), hence the
long timeout on the first test.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

import selfheal
from selfheal.devenv import controlplane, environment, postgres
from selfheal.devenv._process import LOOPBACK, is_listening, pid_alive
from selfheal.devenv.build import default_source_dir, ensure_binaries
from selfheal.devenv.errors import DevEnvError
from selfheal.devenv.postgres import start_postgres, stop_postgres

TRIVIAL_CRD = textwrap.dedent(
    """\
    apiVersion: apiextensions.k8s.io/v1
    kind: CustomResourceDefinition
    metadata:
      name: widgets.devenv.test
    spec:
      group: devenv.test
      scope: Namespaced
      names: {kind: Widget, listKind: WidgetList, plural: widgets, singular: widget}
      versions:
        - name: v1
          served: true
          storage: true
          schema:
            openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
    """
)


def processes_mentioning(path: Path) -> list[int]:
    """PIDs of live processes whose command line mentions `path` (our daemons do)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if str(path) in cmdline and pid_alive(int(proc.name)):
                found.append(int(proc.name))
    return found


@pytest.fixture
def crd_dir(tmp_path: Path) -> Path:
    """The project's CRDs when they exist, else a trivial CRD."""
    repo_crds = default_source_dir() / "crds"
    if any(repo_crds.glob("*.yaml")):
        return repo_crds
    (tmp_path / "crds").mkdir()
    (tmp_path / "crds" / "widget.yaml").write_text(TRIVIAL_CRD)
    return tmp_path / "crds"


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    state = tmp_path / "state"
    yield state
    environment.down(state_dir=state)  # never leave daemons behind, even on failure
    assert processes_mentioning(state) == []


def kubectl(env: environment.DevEnvironment, *args: str) -> str:
    result = subprocess.run(
        [str(env.kubectl), "--kubeconfig", str(env.kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.timeout(1500)  # may include the cold Go build
def test_up_serves_survives_parent_is_idempotent_and_down_cleans_up(state_dir: Path, crd_dir: Path) -> None:
    # `up` in a separate interpreter that then exits, like `selfheal dev up`:
    # the daemons must outlive it, and stdout must hold only the export lines.
    package_root = str(Path(selfheal.__file__).resolve().parents[1])
    child_env = {**os.environ, "PYTHONPATH": os.pathsep.join([package_root, os.environ.get("PYTHONPATH", "")])}
    script = (
        "import sys; from pathlib import Path; from selfheal.devenv import environment as e; "
        "print(e.export_lines(e.up(state_dir=Path(sys.argv[1]), crd_dir=Path(sys.argv[2]))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(state_dir), str(crd_dir)],
        capture_output=True,
        text=True,
        env=child_env,
        timeout=1400,
    )
    assert result.returncode == 0, result.stderr
    exports = result.stdout
    assert [line.split("=", 1)[0] for line in exports.splitlines()] == [
        "export KUBECONFIG",
        "export SELFHEAL_DATABASE_URL",
        "export PATH",
    ]

    env = environment.current(state_dir=state_dir)
    assert env is not None, "daemons did not survive the exit of the process that started them"
    pids, ports = env.pids, env.ports
    assert all(pid is not None and pid_alive(pid) for pid in pids.values()), pids
    assert all(is_listening(port) for port in ports.values()), ports

    # the exported shell environment drives the built kubectl against the server
    shell = subprocess.run(
        ["bash", "-c", exports + "\ncommand -v kubectl; kubectl get ns -o name; kubectl version -o json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shell.returncode == 0, shell.stderr
    assert shell.stdout.splitlines()[0] == str(env.kubectl)
    assert "namespace/default" in shell.stdout

    # tests create their own namespaces; the CRDs' resources list in them
    kubectl(env, "create", "namespace", "devenv-test")
    for crd in kubectl(env, "get", "crd", "-o", "jsonpath={.items[*].metadata.name}").split():
        kubectl(env, "get", crd, "-n", "devenv-test")

    with psycopg.connect(env.database_url) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("molam_connect",)

    again = environment.up(state_dir=state_dir, crd_dir=crd_dir)
    assert again.pids == pids
    assert again.database_url == env.database_url and again.kubeconfig == env.kubeconfig

    # the database can be bounced under a running world; `down` still finds it
    environment.stop_database(env)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(env.database_url, connect_timeout=2)
    environment.start_database(env)
    with psycopg.connect(env.database_url) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("molam_connect",)
    restarted_pg = env.pids["postgres"]
    assert restarted_pg not in (None, pids["postgres"])

    environment.down(state_dir=state_dir)
    assert restarted_pg is not None and not pid_alive(restarted_pg)
    assert not any(pid_alive(pid) for pid in pids.values() if pid is not None)
    assert not any(is_listening(port) for port in ports.values())
    assert processes_mentioning(state_dir) == []
    assert environment.current(state_dir=state_dir) is None
    environment.down(state_dir=state_dir)  # safe when nothing runs


@pytest.mark.timeout(1500)
def test_failed_up_leaves_nothing_running(state_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken-crds"
    broken.mkdir()
    (broken / "bad.yaml").write_text(
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
        "metadata: {name: bad.devenv.test}\nspec: {}\n"
    )
    with pytest.raises(DevEnvError, match="kubectl apply"):
        environment.up(state_dir=state_dir, crd_dir=broken)
    assert processes_mentioning(state_dir) == []
    assert environment.current(state_dir=state_dir) is None


def test_postgres_restarts_on_same_port_with_data_kept(tmp_path: Path) -> None:
    data_dir, log_file = tmp_path / "pg", tmp_path / "postgres.log"
    server = start_postgres(data_dir=data_dir, log_file=log_file)
    try:
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (value text)")
            conn.execute("INSERT INTO kept VALUES ('survives restart')")
        first_pid = server.pid

        stop_postgres(server)
        assert server.pid is None and first_pid is not None and not pid_alive(first_pid)
        assert not is_listening(server.port)
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(server.url(), connect_timeout=2)

        restarted = start_postgres(data_dir=data_dir, log_file=log_file, port=server.port)
        assert restarted.url() == server.url()
        assert restarted.pid not in (None, first_pid)
        with psycopg.connect(restarted.url()) as conn:
            assert conn.execute("SELECT value FROM kept").fetchall() == [("survives restart",)]
    finally:
        stop_postgres(server)
    assert not is_listening(server.port)
    assert processes_mentioning(data_dir) == []


def _first_the_taken_port(monkeypatch, module, taken: int) -> list[int]:
    """`module.free_ports` hands out `taken` (held by the test) first, as if another process had
    bound it between our picking and the child's binding; real free ports afterwards."""
    real, picks = module.free_ports, []

    def free_ports(count: int) -> list[int]:
        picks.append(count)
        return [taken, *real(count - 1)] if len(picks) == 1 else real(count)

    monkeypatch.setattr(module, "free_ports", free_ports)
    return picks


def test_postgres_on_a_port_taken_meanwhile_starts_again_on_another(tmp_path: Path, monkeypatch) -> None:
    messages: list[str] = []
    with socket.create_server((LOOPBACK, 0)) as holder:
        taken = holder.getsockname()[1]
        picks = _first_the_taken_port(monkeypatch, postgres, taken)
        server = start_postgres(data_dir=tmp_path / "pg", log_file=tmp_path / "postgres.log", log=messages.append)
        try:
            assert server.port != taken and len(picks) == 2
            assert f"port {taken} was taken between picking and binding it; starting again on another" in messages
            with psycopg.connect(server.url()) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
        finally:
            stop_postgres(server)
    assert processes_mentioning(tmp_path / "pg") == []


@pytest.mark.timeout(1500)  # may include the cold Go build
def test_control_plane_on_a_port_taken_meanwhile_starts_again_on_others(tmp_path: Path, monkeypatch) -> None:
    messages: list[str] = []
    binaries = ensure_binaries()
    state = tmp_path / "plane"
    with socket.create_server((LOOPBACK, 0)) as holder:
        taken = holder.getsockname()[1]
        picks = _first_the_taken_port(monkeypatch, controlplane, taken)  # etcd's client port
        plane = controlplane.start_control_plane(binaries=binaries, state_dir=state, log=messages.append)
        try:
            assert taken not in plane.ports.values() and len(picks) == 2
            assert "a port was taken between picking and binding it; starting again on other ports" in messages
            assert controlplane.is_running(plane)
        finally:
            controlplane.stop_control_plane(plane, log=messages.append)
    assert processes_mentioning(state) == []
