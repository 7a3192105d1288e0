#!/usr/bin/env python3
"""Build the selfheal image here, where no image registry can be reached (standard library only).

    python3 hack/image/build.py [--tag localhost/selfheal:dev] [--refresh] [--mirror URL]

The Dockerfile's default base, python:3.12-slim, cannot be pulled, so the base comes from Debian
packages: debootstrap makes a bookworm minbase root filesystem from the mirror in this machine's
apt sources, `podman import` turns it into localhost/debian-min, and Containerfile.base adds
python3, python3-venv and ca-certificates (localhost/selfheal-base). Each step is skipped or
served from podman's layer cache when done before, so a rerun takes seconds; --refresh builds
the base again (Debian's security updates).

Installs nothing: it names the Debian packages to install when podman, runc or debootstrap is
missing. Changes no system file: podman reads the containers.conf written under the cache
(CONTAINERS_CONF), and runs runc (crun refuses this machine's cgroup layout).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SUITE = "bookworm"
DEBIAN_MIN = "localhost/debian-min"
BASE = "localhost/selfheal-base"
DEFAULT_TAG = "localhost/selfheal:dev"
TOOLS = ("podman", "runc", "debootstrap")  # command = Debian package, for all three
TRUST_STORE = Path("/etc/ssl/certs")

# RLIMIT_NOFILE/NPROC cannot be raised in this machine's sandbox, and systemd does not manage its cgroups.
CONTAINERS_CONF = """\
[containers]
default_ulimits = []

[engine]
cgroup_manager = "cgroupfs"
"""

# What Debian's slim images leave out; dpkg keeps leaving it out in the layers built on top.
DPKG_EXCLUDES = """\
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
"""
APT_CONF = 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\nAcquire::Languages "none";\n'


class BuildError(Exception):
    """A reason the image cannot be built, said so the reader knows what to do."""


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "selfheal" / "image"


def log(message: str) -> None:
    print(f"image: {message}", file=sys.stderr, flush=True)


# --- the tools -------------------------------------------------------------------------------


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def check_tools() -> None:
    missing = missing_tools()
    if missing:
        raise BuildError(f"missing {', '.join(missing)}: apt-get install -y {' '.join(missing)}")


def containers_conf() -> Path:
    path = cache_dir() / "containers.conf"
    if not path.exists() or path.read_text() != CONTAINERS_CONF:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(CONTAINERS_CONF)
    return path


def podman_env() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": str(containers_conf())}


def podman_command(*args: str) -> list[str]:
    return ["podman", "--runtime", "runc", *args]


def podman(*args: str, capture: bool = False, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        podman_command(*args),
        env=podman_env(),
        text=True,
        stdout=subprocess.PIPE if capture else sys.stderr,
        stderr=subprocess.PIPE if capture else None,
    )
    if check and result.returncode != 0:
        detail = f":\n{result.stderr.strip()}" if capture and result.stderr else ""
        raise BuildError(f"podman {args[0]} failed with exit code {result.returncode}{detail}")
    return result


def image_exists(name: str) -> bool:
    return podman("image", "exists", name, check=False).returncode == 0


def image_size(name: str) -> int:
    return int(podman("image", "inspect", "--format", "{{.Size}}", name, capture=True).stdout.strip())


# --- the Debian mirror, from this machine's apt sources -------------------------------------


@dataclass(frozen=True)
class AptSource:
    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]


def _one_line_sources(text: str) -> list[AptSource]:
    found = []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if not words or words[0] != "deb":
            continue
        words = words[1:]
        if words and words[0].startswith("["):  # [arch=amd64 signed-by=...]
            while words and not words[0].endswith("]"):
                words = words[1:]
            words = words[1:]
        if len(words) >= 2:
            found.append(AptSource(uri=words[0], suites=(words[1],), components=tuple(words[2:])))
    return found


def _deb822_sources(text: str) -> list[AptSource]:
    found = []
    for paragraph in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = None
        for line in paragraph.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            if line[0].isspace() and key:  # continuation (an inline Signed-By key)
                fields[key] += " " + line.strip()
            elif ":" in line:
                key, value = line.split(":", 1)
                key = key.strip().lower()
                fields[key] = value.strip()
        if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes").lower() == "no":
            continue
        for uri in fields.get("uris", "").split():
            found.append(
                AptSource(
                    uri=uri,
                    suites=tuple(fields.get("suites", "").split()),
                    components=tuple(fields.get("components", "").split()),
                )
            )
    return found


def apt_source_files(etc_apt: Path) -> list[Path]:
    listed = sorted((etc_apt / "sources.list.d").glob("*.list")) + sorted(
        (etc_apt / "sources.list.d").glob("*.sources")
    )
    return [path for path in [etc_apt / "sources.list", *listed] if path.is_file()]


def apt_sources(etc_apt: Path = Path("/etc/apt")) -> list[AptSource]:
    found = []
    for path in apt_source_files(etc_apt):
        text = path.read_text(errors="replace")
        found += _deb822_sources(text) if path.suffix == ".sources" else _one_line_sources(text)
    return found


def host_codename(os_release: Path = Path("/etc/os-release")) -> str:
    for line in os_release.read_text().splitlines() if os_release.exists() else []:
        if line.startswith("VERSION_CODENAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return SUITE


def debian_sources(*, etc_apt: Path = Path("/etc/apt"), codename: str | None = None) -> list[AptSource]:
    """The Debian archive entries of this machine's apt sources, rewritten for bookworm.

    An entry is Debian's when it serves the host's release (`trixie`, `trixie-updates`,
    `trixie-security` on a trixie host): its URIs are the mirrors this machine can reach.
    The first one serves the release itself; that is the mirror debootstrap uses.
    """
    codename = codename or host_codename()
    wanted = {codename: SUITE, f"{codename}-updates": f"{SUITE}-updates", f"{codename}-security": f"{SUITE}-security"}
    found = []
    for source in apt_sources(etc_apt):
        suites = tuple(wanted[suite] for suite in source.suites if suite in wanted)
        if suites:
            found.append(AptSource(uri=source.uri.rstrip("/"), suites=suites, components=("main",)))
    if not any(SUITE in source.suites for source in found):
        files = ", ".join(str(path) for path in apt_source_files(etc_apt)) or f"no file under {etc_apt}"
        raise BuildError(
            f"no Debian mirror for the release '{codename}' in the apt sources ({files}); add one, or pass --mirror URL"
        )
    found.sort(key=lambda source: SUITE not in source.suites)  # the release's own mirror first
    return found


# --- the steps -------------------------------------------------------------------------------


def build_debian_min(sources: list[AptSource]) -> None:
    """debootstrap a minbase bookworm into a temporary directory, slim it, import it."""
    mirror = sources[0].uri
    log(f"debootstrap --variant=minbase {SUITE} from {mirror} (about 30 s)")
    with tempfile.TemporaryDirectory(dir=cache_dir(), prefix="rootfs-") as temp:
        rootfs = Path(temp) / "rootfs"
        result = subprocess.run(
            ["debootstrap", "--variant=minbase", SUITE, str(rootfs), mirror],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        if result.returncode != 0:
            raise BuildError(f"debootstrap failed with exit code {result.returncode}:\n{result.stdout[-3000:]}")
        _slim(rootfs, sources)
        tar = subprocess.Popen(["tar", "--numeric-owner", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(
            podman_command("import", "-", DEBIAN_MIN),
            env=podman_env(),
            stdin=tar.stdout,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        tar.stdout.close()
        if tar.wait() != 0 or imported.returncode != 0:
            raise BuildError(f"podman import of the root filesystem failed: {imported.stderr.strip()}")


def _slim(rootfs: Path, sources: list[AptSource]) -> None:
    """What a container never uses: apt's lists and caches, documentation, translations."""
    for pattern in (
        "var/lib/apt/lists/*",
        "var/cache/apt/*.bin",
        "var/cache/apt/archives/*.deb",
        "usr/share/man/*",
        "usr/share/info/*",
        "usr/share/locale/*",
    ):
        for path in rootfs.glob(pattern):
            if path.name not in ("lock", "partial", "locale.alias"):
                _remove(path)
    for doc in (rootfs / "usr/share/doc").glob("*"):
        for path in doc.iterdir() if doc.is_dir() and not doc.is_symlink() else ():
            if path.name != "copyright":  # the licences stay
                _remove(path)
    (rootfs / "etc/dpkg/dpkg.cfg.d/slim").write_text(DPKG_EXCLUDES)
    (rootfs / "etc/apt/apt.conf.d/90slim").write_text(APT_CONF)
    lines = [f"deb {source.uri} {suite} main" for source in sources for suite in source.suites]
    (rootfs / "etc/apt/sources.list").write_text(
        "# From the apt sources of the machine that built this image.\n" + "\n".join(lines) + "\n"
    )


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def build_base(*, refresh: bool) -> None:
    log(f"{BASE}: python3, python3-venv, ca-certificates on {DEBIAN_MIN}")
    podman(
        "build",
        *(["--no-cache"] if refresh else []),
        "--build-arg",
        f"DEBIAN={DEBIAN_MIN}",
        "--file",
        str(HERE / "Containerfile.base"),
        "--tag",
        BASE,
        str(HERE),
    )


def build_image(tag: str) -> None:
    log(f"{tag}: the Dockerfile on {BASE}")
    # pip reaches the package index through this machine's TLS proxy: trust what the host trusts.
    trust = ["--volume", f"{TRUST_STORE}:{TRUST_STORE}:ro"] if TRUST_STORE.is_dir() else []
    podman("build", *trust, "--build-arg", f"BASE={BASE}", "--file", str(ROOT / "Dockerfile"), "--tag", tag, str(ROOT))


@contextlib.contextmanager
def exclusive():
    """One build at a time on this machine: two would debootstrap and tag concurrently."""
    cache_dir().mkdir(parents=True, exist_ok=True)
    with (cache_dir() / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def build(*, tag: str = DEFAULT_TAG, refresh: bool = False, mirror: str | None = None) -> str:
    check_tools()
    with exclusive():
        if refresh or not image_exists(DEBIAN_MIN):
            sources = (
                [AptSource(uri=mirror.rstrip("/"), suites=(SUITE,), components=("main",))]
                if mirror
                else debian_sources()
            )
            build_debian_min(sources)
        build_base(refresh=refresh)
        build_image(tag)
    return tag


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tag", default=DEFAULT_TAG, help=f"name of the image built (default: {DEFAULT_TAG})")
    parser.add_argument("--refresh", action="store_true", help="build the Debian base again (security updates)")
    parser.add_argument("--mirror", metavar="URL", help="Debian mirror for debootstrap (default: the apt sources')")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        tag = build(tag=args.tag, refresh=args.refresh, mirror=args.mirror)
    except BuildError as error:
        print(f"image: {error}", file=sys.stderr)
        return 1
    log(f"{tag} built in {time.monotonic() - started:.0f} s, {image_size(tag) / 1e6:.0f} MB")
    print(tag)
    return 0


if __name__ == "__main__":
    sys.exit(main())
