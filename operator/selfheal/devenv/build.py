"""Build etcd, kube-apiserver and kubectl from the Go wrapper modules in hack/controlplane.

Nothing is downloaded as a prebuilt binary: the versions are pinned in the
wrapper go.mod files (checked by go.sum) and stamped into the binaries, so a
cached binary whose `--version` does not match go.mod is rebuilt.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ._process import Log, log_to_stderr
from .errors import DevEnvError

_KUBE_MODULE = "k8s.io/kubernetes"
_ETCD_MODULE = "go.etcd.io/etcd/server/v3"
# Go's version stamping for Kubernetes binaries (what hack/lib/version.sh does);
# kubectl reads client-go's copy, the server component-base's.
_KUBE_VERSION_PACKAGES = ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")


@dataclass(frozen=True)
class Binaries:
    etcd: Path
    kube_apiserver: Path
    kubectl: Path

    @property
    def bin_dir(self) -> Path:
        return self.kubectl.parent


def default_cache_dir() -> Path:
    """`$SELFHEAL_CACHE_DIR`, else `~/.cache/selfheal`."""
    env = os.environ.get("SELFHEAL_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "selfheal"


def default_source_dir() -> Path:
    """The repository root holding hack/controlplane (`$SELFHEAL_SOURCE_DIR` overrides).

    This file is operator/selfheal/devenv/build.py, so the root is parents[3].
    """
    env = os.environ.get("SELFHEAL_SOURCE_DIR")
    return Path(env).expanduser() if env else Path(__file__).resolve().parents[3]


def ensure_binaries(
    *,
    cache_dir: Path | None = None,
    source_dir: Path | None = None,
    log: Log = log_to_stderr,
) -> Binaries:
    """Return paths of etcd, kube-apiserver and kubectl in `cache_dir/bin`.

    Builds only binaries that are missing or whose version differs from the
    version pinned in `source_dir/hack/controlplane/*/go.mod`. Progress goes to
    `log`. Raises DevEnvError if the Go toolchain is missing or a build fails.
    Concurrent callers are serialised with a lock file in `cache_dir`.
    """
    cache_dir = cache_dir or default_cache_dir()
    source_dir = source_dir or default_source_dir()
    kube_mod = source_dir / "hack" / "controlplane" / "kubernetes"
    etcd_mod = source_dir / "hack" / "controlplane" / "etcd"
    for module in (kube_mod, etcd_mod):
        if not (module / "go.mod").is_file() or not (module / "go.sum").is_file():
            raise DevEnvError(
                f"{module}/go.mod or go.sum not found; set SELFHEAL_SOURCE_DIR to the selfheal repository root"
            )
    kube_version = _pinned_version(kube_mod / "go.mod", _KUBE_MODULE)
    etcd_version = _pinned_version(etcd_mod / "go.mod", _ETCD_MODULE)

    bin_dir = cache_dir / "bin"
    binaries = Binaries(etcd=bin_dir / "etcd", kube_apiserver=bin_dir / "kube-apiserver", kubectl=bin_dir / "kubectl")
    bin_dir.mkdir(parents=True, exist_ok=True)
    with _locked(cache_dir / ".build.lock"):
        kube_ok = _version_of(binaries.kube_apiserver, ["--version"]) == f"Kubernetes {kube_version}"
        kubectl_ok = _kubectl_version(binaries.kubectl) == kube_version
        if not (kube_ok and kubectl_ok):
            log(
                f"building kube-apiserver and kubectl {kube_version} into {bin_dir} "
                "(a cold build takes about 5 minutes; later runs reuse Go's build cache)"
            )
            major, minor = kube_version.removeprefix("v").split(".")[:2]
            stamps = {"gitVersion": kube_version, "gitMajor": major, "gitMinor": minor, "gitTreeState": "clean"}
            ldflags = " ".join(
                f"-X '{pkg}.{key}={value}'" for pkg in _KUBE_VERSION_PACKAGES for key, value in stamps.items()
            )
            _go_build(
                module_dir=kube_mod,
                packages=["k8s.io/kubernetes/cmd/kube-apiserver", "k8s.io/kubernetes/cmd/kubectl"],
                outputs=["kube-apiserver", "kubectl"],
                ldflags=ldflags,
                bin_dir=bin_dir,
                log=log,
            )
        if _version_of(binaries.etcd, ["--version"]) != f"etcd Version: {etcd_version.removeprefix('v')}":
            log(f"building etcd {etcd_version} into {bin_dir} (a cold build takes about 2 minutes)")
            _go_build(
                module_dir=etcd_mod,
                packages=[_ETCD_MODULE],
                outputs=["etcd"],
                ldflags="",
                bin_dir=bin_dir,
                log=log,
            )
    return binaries


def _pinned_version(go_mod: Path, module: str) -> str:
    """The version go.mod requires for `module` (e.g. "v1.36.3")."""
    match = re.search(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", go_mod.read_text(), re.M)
    if match is None:
        raise DevEnvError(f"{go_mod} does not require {module}")
    return match.group(1)


def _version_of(binary: Path, args: Sequence[str]) -> str | None:
    """First line of `binary args`, or None if the binary is missing or broken."""
    if not binary.is_file():
        return None
    try:
        out = subprocess.run([binary, *args], capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip().splitlines()[0] if out.stdout.strip() else None


def _kubectl_version(kubectl: Path) -> str | None:
    if not kubectl.is_file():
        return None
    try:
        out = subprocess.run([kubectl, "version", "--client", "-o", "json"], capture_output=True, text=True, timeout=30)
        version: str = json.loads(out.stdout)["clientVersion"]["gitVersion"]
        return version
    except (OSError, subprocess.SubprocessError, ValueError, KeyError):
        return None


def _go_build(
    *,
    module_dir: Path,
    packages: Sequence[str],
    outputs: Sequence[str],
    ldflags: str,
    bin_dir: Path,
    log: Log,
) -> None:
    go = shutil.which("go")
    if go is None:
        raise DevEnvError(
            "the Go toolchain ('go') is not on PATH; it is needed once to build etcd, "
            f"kube-apiserver and kubectl from {module_dir.parent} (see the go line of its go.mod)"
        )
    # Build into a scratch dir and rename: an interrupted build never leaves a
    # truncated binary in bin/ that a later run would mistake for a good one.
    with tempfile.TemporaryDirectory(prefix=".build-", dir=bin_dir) as scratch:
        # -mod=readonly: versions come from go.mod/go.sum only, never silently updated.
        # One package: name the file (etcd's main package path ends in "/v3");
        # several: a directory, each binary named after its package.
        target = f"{scratch}/{outputs[0]}" if len(packages) == 1 else f"{scratch}/"
        argv = [go, "build", "-mod=readonly", "-o", target, *packages]
        if ldflags:
            argv[2:2] = ["-ldflags", ldflags]
        started = time.monotonic()
        with tempfile.TemporaryFile(mode="w+") as output:
            proc = subprocess.Popen(
                argv, cwd=module_dir, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT
            )
            while True:
                try:
                    proc.wait(timeout=30)
                    break
                except subprocess.TimeoutExpired:
                    log(f"  still building ({time.monotonic() - started:.0f}s) ...")
            if proc.returncode != 0:
                output.seek(0)
                last = "\n".join(output.read().splitlines()[-40:])
                raise DevEnvError(f"go build failed in {module_dir}:\n{last}")
        for name in outputs:
            os.replace(Path(scratch) / name, bin_dir / name)
    log(f"  built {', '.join(outputs)} in {time.monotonic() - started:.0f}s")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
