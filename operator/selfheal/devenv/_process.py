"""Process and port helpers shared by the control plane and PostgreSQL.

Components run as detached daemons (own session, output to a log file) because
``selfheal dev up`` returns while they keep running; a later ``down`` finds them
again only through the PIDs and ports recorded in the state file.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from .errors import DevEnvError

Log = Callable[[str], None]

LOOPBACK = "127.0.0.1"

# Popen objects of daemons started by this interpreter. Holding them avoids
# "subprocess still running" warnings and lets us reap our own zombies on stop.
_children: dict[int, subprocess.Popen[bytes]] = {}


def log_to_stderr(message: str) -> None:
    """Default progress sink: stderr, so stdout stays clean for `eval "$(selfheal dev up)"`."""
    print(f"selfheal dev: {message}", file=sys.stderr, flush=True)


def free_ports(count: int) -> list[int]:
    """Return `count` distinct loopback ports that are free right now.

    All sockets are held open until every port is chosen so the kernel cannot
    hand out the same port twice (same approach as envtest).
    """
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((LOOPBACK, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


# etcd, kube-apiserver and PostgreSQL cannot be asked for "any free port" and report it back:
# ports are picked free here, and a start that fails because one was taken in between is retried.
BIND_ATTEMPTS = 3


class PortTaken(DevEnvError):
    """A component could not bind a port picked free for it: another process took it meanwhile."""


def port_taken(log_text: str) -> bool:
    """True when a component's log says it could not bind its port."""
    return "address already in use" in log_text.lower()


def is_listening(port: int) -> bool:
    """True if something accepts TCP connections on loopback:`port`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((LOOPBACK, port)) == 0


def wait_ports_closed(ports: Mapping[str, int], *, timeout: float = 10.0) -> None:
    """Fail unless no listener is left on any of `ports` (name -> port)."""
    deadline = time.monotonic() + timeout
    while True:
        busy = {name: port for name, port in ports.items() if is_listening(port)}
        if not busy:
            return
        if time.monotonic() > deadline:
            raise DevEnvError(f"ports still in use after stop: {busy}")
        time.sleep(0.1)


def spawn(
    argv: Sequence[str | os.PathLike[str]],
    *,
    log_file: Path,
    user: str | None = None,
    env: Mapping[str, str] | None = None,
) -> int:
    """Start a daemon that survives this interpreter; return its PID.

    start_new_session detaches it from our terminal/process group (Ctrl-C in the
    shell that ran `dev up` must not kill it) and makes it a group leader, so
    stop() can kill any helper processes it forked along with it.
    """
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as out:
        proc = subprocess.Popen(
            [str(arg) for arg in argv],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            env=dict(env) if env is not None else None,
            user=user,
            group=user,
            extra_groups=[] if user is not None else None,
        )
    _children[proc.pid] = proc
    return proc.pid


def pid_alive(pid: int) -> bool:
    """True if `pid` is a live (non-zombie) process."""
    child = _children.get(pid)
    if child is not None and child.poll() is not None:
        del _children[pid]  # our own child has exited and is now reaped
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    # field 3, after the parenthesised command name, is the state letter
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def pid_runs(pid: int, executable: Path) -> bool:
    """True if `pid` is alive and runs `executable`.

    Guards against PID reuse: a PID read from an old state file may belong to an
    unrelated process by now, which we must never signal.
    """
    if not pid_alive(pid):
        return False
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return False
    # A binary replaced by a rebuild while running shows up as "<path> (deleted)".
    return Path(exe.removesuffix(" (deleted)")) == executable.resolve()


def stop(
    pid: int,
    *,
    executable: Path,
    name: str,
    log: Log,
    signals: Sequence[signal.Signals] = (signal.SIGTERM,),
    timeout: float = 15.0,
) -> None:
    """Stop `pid` gracefully, escalating to SIGKILL of its process group.

    Each signal in `signals` gets `timeout` seconds; a process that ignores all
    of them is killed together with its group (e.g. PostgreSQL backends).
    """
    if not pid_runs(pid, executable):
        return
    for sig in signals:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        if _wait_dead(pid, timeout):
            return
        log(f"{name} (pid {pid}) still running {timeout:.0f}s after {sig.name}")
    log(f"killing {name} (pid {pid}) with SIGKILL")
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    if not _wait_dead(pid, 5.0):
        raise DevEnvError(f"{name} (pid {pid}) survived SIGKILL")


def _wait_dead(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def tail(path: Path, lines: int = 25) -> str:
    """Last `lines` lines of a log file, for error messages."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"(no log file at {path})"
    return "\n".join(text.splitlines()[-lines:])


def fail_with_log(message: str, *, log_file: Path) -> DevEnvError:
    """Build an error that carries the tail of the component's log."""
    return DevEnvError(f"{message}\n--- last lines of {log_file} ---\n{tail(log_file)}")
