"""The whole local test world: control plane + PostgreSQL + CRDs, behind `up` / `down`.

`selfheal dev up` / `selfheal dev down` (cli.py) and the tests call only this
module. Everything lives in one state dir: data, credentials, logs
(etcd.log, kube-apiserver.log, postgres.log) and state.json, which records PIDs
and ports so that a later process can find and stop the daemons.
"""

from __future__ import annotations

import contextlib
import fcntl
import shlex
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import state
from ._process import Log, log_to_stderr
from .build import default_source_dir, ensure_binaries
from .controlplane import ControlPlane, api_get, start_control_plane, stop_control_plane
from .controlplane import is_running as control_plane_running
from .errors import DevEnvError
from .postgres import Postgres, start_postgres, stop_postgres
from .postgres import is_running as postgres_running

DATABASE_URL_ENV = "SELFHEAL_DATABASE_URL"
_CRD_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class DevEnvironment:
    """A running local test world."""

    state_dir: Path
    kubeconfig: Path
    database_url: str  # postgresql:// URL of the molam_connect database
    bin_dir: Path  # holds kubectl matching the API server version
    control_plane: ControlPlane = field(repr=False)
    postgres: Postgres = field(repr=False)

    @property
    def kubectl(self) -> Path:
        return self.bin_dir / "kubectl"

    @property
    def pids(self) -> dict[str, int | None]:
        """Current PIDs (PostgreSQL's is re-read, it may have been restarted)."""
        return {
            "etcd": self.control_plane.etcd_pid,
            "kube-apiserver": self.control_plane.apiserver_pid,
            "postgres": self.postgres.pid,
        }

    @property
    def ports(self) -> dict[str, int]:
        return {**self.control_plane.ports, "postgres": self.postgres.port}


def up(
    *,
    state_dir: Path | None = None,
    crd_dir: Path | None = None,
    cache_dir: Path | None = None,
    source_dir: Path | None = None,
    log: Log = log_to_stderr,
) -> DevEnvironment:
    """Start (or find) the local test world and return it.

    - Builds missing binaries (see build.ensure_binaries; a cold build takes ~5 min).
    - Starts etcd, kube-apiserver and PostgreSQL as daemons that outlive this
      process, waits until each really serves, creates the `molam_connect` database.
    - Applies every *.yaml/*.yml/*.json in `crd_dir` (default: `<source_dir>/crds`)
      with the built kubectl and waits until each CRD is Established and its
      resource lists without error.

    Idempotent: if the state dir describes a running world (live PIDs, /readyz
    ok, database accepting connections), that world is returned with the same
    PIDs (CRDs are re-applied so edits are picked up). A half-running world is
    torn down and started afresh; every fresh start begins with empty etcd and
    PostgreSQL data. On failure everything started is stopped again and
    DevEnvError is raised. Progress goes to `log` (stderr by default), never stdout.
    """
    state_dir = _resolve_state_dir(state_dir)
    source_dir = source_dir or default_source_dir()
    crd_dir = crd_dir or source_dir / "crds"
    crd_files = _crd_files(crd_dir)
    with _locked(state_dir):
        recorded = state.load(state_dir)
        if recorded:
            env = _from_state(state_dir, recorded)
            if env is not None and control_plane_running(env.control_plane) and postgres_running(env.postgres):
                log(f"already up (state in {state_dir})")
                _install_crds(env, crd_dir=crd_dir, crd_files=crd_files, log=log)
                return env
            log("previous environment is only partly running; restarting it")
            _teardown(state_dir, recorded, log=log)

        binaries = ensure_binaries(cache_dir=cache_dir, source_dir=source_dir, log=log)
        started = time.monotonic()
        recorded = {"bin_dir": str(binaries.bin_dir)}
        try:
            plane = start_control_plane(binaries=binaries, state_dir=state_dir, log=log)
            # record right away: if we die from here on, `down` can still stop it
            recorded["control_plane"] = plane.to_state()
            state.save(state_dir, recorded)

            pg_data = state_dir / "postgres"
            shutil.rmtree(pg_data, ignore_errors=True)
            (state_dir / "postgres.log").unlink(missing_ok=True)
            pg = start_postgres(data_dir=pg_data, log_file=state_dir / "postgres.log", log=log)
            recorded["postgres"] = pg.to_state()
            state.save(state_dir, recorded)

            env = _environment(state_dir, binaries.bin_dir, plane, pg)
            _install_crds(env, crd_dir=crd_dir, crd_files=crd_files, log=log)
        except BaseException:
            log("start failed; stopping what was started")
            with contextlib.suppress(DevEnvError):
                _teardown(state_dir, recorded, log=log)
            raise
        log(f"up in {time.monotonic() - started:.1f}s (state in {state_dir})")
        return env


def down(*, state_dir: Path | None = None, log: Log = log_to_stderr) -> None:
    """Stop everything `up` started in `state_dir` and delete its data.

    Stops the API server, then etcd, then PostgreSQL (each gracefully, with a
    bounded wait and SIGKILL as last resort) and verifies that no recorded
    process is alive and no recorded port is still listening. Logs are kept.
    Safe to call when nothing runs. Raises DevEnvError if something survived.
    """
    state_dir = _resolve_state_dir(state_dir)
    with _locked(state_dir):
        recorded = state.load(state_dir)
        if not recorded:
            log(f"nothing recorded in {state_dir}; nothing to stop")
        _teardown(state_dir, recorded, log=log)


def current(*, state_dir: Path | None = None) -> DevEnvironment | None:
    """The environment recorded in `state_dir` if it is fully running, else None."""
    state_dir = _resolve_state_dir(state_dir)
    env = _from_state(state_dir, state.load(state_dir))
    if env and control_plane_running(env.control_plane) and postgres_running(env.postgres):
        return env
    return None


def export_lines(env: DevEnvironment) -> str:
    """Shell lines (no trailing newline) for `eval "$(selfheal dev up)"`.

    Sets KUBECONFIG, SELFHEAL_DATABASE_URL and puts the built kubectl first on
    PATH so its version matches the API server.
    """
    return "\n".join(
        [
            f"export KUBECONFIG={shlex.quote(str(env.kubeconfig))}",
            f"export {DATABASE_URL_ENV}={shlex.quote(env.database_url)}",
            f'export PATH={shlex.quote(str(env.bin_dir))}:"$PATH"',
        ]
    )


def stop_database(env: DevEnvironment, *, log: Log = log_to_stderr) -> None:
    """Stop only PostgreSQL, keeping its data (to test the operator's retries)."""
    stop_postgres(env.postgres, log=log)


def start_database(env: DevEnvironment, *, log: Log = log_to_stderr) -> None:
    """Start PostgreSQL again on the same data dir and the same port."""
    start_postgres(data_dir=env.postgres.data_dir, log_file=env.postgres.log_file, port=env.postgres.port, log=log)


def _resolve_state_dir(state_dir: Path | None) -> Path:
    # absolute: the paths are written into state.json and the kubeconfig
    resolved = (state_dir or state.default_state_dir()).expanduser().resolve()
    resolved.mkdir(parents=True, exist_ok=True)
    return resolved


def _environment(state_dir: Path, bin_dir: Path, plane: ControlPlane, pg: Postgres) -> DevEnvironment:
    return DevEnvironment(
        state_dir=state_dir,
        kubeconfig=plane.kubeconfig,
        database_url=pg.url(),
        bin_dir=bin_dir,
        control_plane=plane,
        postgres=pg,
    )


def _from_state(state_dir: Path, recorded: dict[str, Any]) -> DevEnvironment | None:
    if not {"bin_dir", "control_plane", "postgres"} <= recorded.keys():
        return None
    return _environment(
        state_dir,
        Path(recorded["bin_dir"]),
        ControlPlane.from_state(recorded["control_plane"]),
        Postgres.from_state(recorded["postgres"]),
    )


def _teardown(state_dir: Path, recorded: dict[str, Any], *, log: Log) -> None:
    """Stop whatever `recorded` lists (each part even if another fails), then delete data."""
    errors: list[str] = []
    if "control_plane" in recorded:
        try:
            stop_control_plane(ControlPlane.from_state(recorded["control_plane"]), log=log)
        except DevEnvError as err:
            errors.append(str(err))
    # Nothing recorded (crash mid-start)? postmaster.pid in the default data dir
    # still identifies the server; port 0 = unknown, skip the port check.
    pg_state = recorded.get("postgres") or {
        "data_dir": str(state_dir / "postgres"),
        "port": 0,
        "log_file": str(state_dir / "postgres.log"),
    }
    try:
        stop_postgres(Postgres.from_state(pg_state), log=log)
    except DevEnvError as err:
        errors.append(str(err))
    if errors:
        # keep state.json so a second `down` can retry
        raise DevEnvError("could not stop everything:\n" + "\n".join(errors))
    for name in ("etcd", "postgres", "pki"):
        shutil.rmtree(state_dir / name, ignore_errors=True)
    (state_dir / "kubeconfig").unlink(missing_ok=True)
    state.remove(state_dir)
    if recorded:
        log("down: all processes stopped, ports free")


def _crd_files(crd_dir: Path) -> list[Path]:
    files = sorted(p for p in crd_dir.glob("*") if p.suffix in _CRD_SUFFIXES) if crd_dir.is_dir() else []
    if not files:
        raise DevEnvError(f"no CRD manifests (*.yaml, *.yml, *.json) found in {crd_dir}")
    return files


def _install_crds(
    env: DevEnvironment, *, crd_dir: Path, crd_files: list[Path], log: Log, timeout: float = 60.0
) -> None:
    log(f"applying CRDs from {crd_dir}")
    argv = [
        str(env.kubectl),
        "--kubeconfig",
        str(env.kubeconfig),
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=selfheal-dev",
        "-o",
        "name",
    ]
    for path in crd_files:
        argv += ["-f", str(path)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise DevEnvError(f"kubectl apply of {crd_dir} failed:\n{result.stderr.strip()}")
    names = [
        line.split("/", 1)[1]
        for line in result.stdout.split()
        if line.startswith("customresourcedefinition.apiextensions.k8s.io/")
    ]
    deadline = time.monotonic() + timeout
    for name in names:
        _wait_crd_usable(env.control_plane, name, deadline=deadline, timeout=timeout)
    log(f"CRDs ready: {', '.join(names) or '(none)'}")


def _wait_crd_usable(plane: ControlPlane, name: str, *, deadline: float, timeout: float) -> None:
    """Wait until CRD `name` is Established and every served version lists.

    Right after establishment the API can still answer 404/429 for a second or
    two while discovery and the new storage catch up.
    """
    last = ""
    while True:
        status, crd = api_get(plane, f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
        established = status == 200 and any(
            c.get("type") == "Established" and c.get("status") == "True"
            for c in (crd.get("status") or {}).get("conditions") or []
        )
        if established:
            group, plural = crd["spec"]["group"], crd["spec"]["names"]["plural"]
            versions = [v["name"] for v in crd["spec"]["versions"] if v.get("served")]
            statuses = {v: api_get(plane, f"/apis/{group}/{v}/{plural}?limit=1")[0] for v in versions}
            if all(s == 200 for s in statuses.values()):
                return
            last = f"list {plural}.{group}: {statuses}"
        else:
            last = f"CRD {name}: HTTP {status}, not Established yet"
        if time.monotonic() > deadline:
            raise DevEnvError(f"CRD {name} not usable after {timeout:.0f}s ({last})")
        time.sleep(0.2)


@contextlib.contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    """Serialise concurrent up/down on the same state dir."""
    with open(state_dir / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
