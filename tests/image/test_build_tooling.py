"""hack/image/build.py's decisions that need no container: the tools it asks for, the mirror it
reads from the machine's apt sources, the podman settings it writes for itself."""

from __future__ import annotations

import textwrap

import pytest

from hack.image import build

DEB822 = """\
Types: deb
# a snapshot comment
URIs: http://mirror.example/debian
Suites: {codename} {codename}-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: {codename}-security
Components: main
"""
THIRD_PARTY = """\
Types: deb
URIs: https://vendor.example/node_20.x
Suites: nodistro
Components: main
"""


def apt_dir(tmp_path, files: dict[str, str]):
    (tmp_path / "sources.list.d").mkdir()
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def test_the_mirror_and_its_security_suite_come_from_the_apt_sources(tmp_path):
    etc_apt = apt_dir(
        tmp_path,
        {
            "sources.list.d/debian.sources": DEB822.format(codename="bookworm"),
            "sources.list.d/vendor.sources": THIRD_PARTY,
            "sources.list.d/cloud.list.disabled": "deb http://disabled.example/apt bookworm main\n",
        },
    )
    sources = build.debian_sources(etc_apt=etc_apt, codename="bookworm")
    assert [(s.uri, s.suites) for s in sources] == [
        ("http://mirror.example/debian", ("bookworm", "bookworm-updates")),
        ("http://mirror.example/debian-security", ("bookworm-security",)),
    ]


def test_on_a_newer_host_the_same_mirrors_serve_bookworm(tmp_path):
    etc_apt = apt_dir(
        tmp_path,
        {
            "sources.list": textwrap.dedent("""\
        # one-line format, with options
        deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.example/debian/ trixie main
        deb-src http://mirror.example/debian trixie main
        deb http://mirror.example/debian-security trixie-security main  # security
        deb http://vendor.example/apt cloud-sdk-trixie main
        """)
        },
    )
    sources = build.debian_sources(etc_apt=etc_apt, codename="trixie")
    assert [(s.uri, s.suites) for s in sources] == [
        ("http://mirror.example/debian", ("bookworm",)),
        ("http://mirror.example/debian-security", ("bookworm-security",)),
    ]


def test_no_debian_mirror_is_an_error_naming_the_files_read(tmp_path):
    etc_apt = apt_dir(tmp_path, {"sources.list.d/vendor.sources": THIRD_PARTY})
    with pytest.raises(build.BuildError) as caught:
        build.debian_sources(etc_apt=etc_apt, codename="bookworm")
    message = str(caught.value)
    assert "no Debian mirror for the release 'bookworm'" in message
    assert str(etc_apt / "sources.list.d/vendor.sources") in message and "--mirror URL" in message


def test_missing_tools_are_named_with_the_packages_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(build.BuildError) as caught:
        build.check_tools()
    assert str(caught.value) == "missing podman, runc, debootstrap: apt-get install -y podman runc debootstrap"
    assert build.main(["--tag", "localhost/never-built"]) == 1


def test_podman_runs_runc_with_settings_of_its_own_and_no_system_file(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert build.podman_command("images") == ["podman", "--runtime", "runc", "images"]
    conf = build.podman_env()["CONTAINERS_CONF"]
    assert conf == str(tmp_path / "selfheal/image/containers.conf")
    text = (tmp_path / "selfheal/image/containers.conf").read_text()
    assert "default_ulimits = []" in text and 'cgroup_manager = "cgroupfs"' in text
