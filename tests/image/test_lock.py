"""The lock files the image installs from match pyproject.toml (hack/image/lock.sh regenerates them)."""

from __future__ import annotations

import re

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.image.test_image_contents import PYPROJECT, ROOT, extras, locked

ENTRY = re.compile(r"^(\S+==\S+)(?:[^\n]*\\\n(?:[ \t]+--hash=sha256:[0-9a-f]{64}[ \t]*\\?\n)+)", re.MULTILINE)


def assert_pins(lock: str, requirements: list[str]) -> None:
    pins = {name: version for name, version, _ in locked(ROOT / lock)}
    for spec in map(Requirement, requirements):
        name = canonicalize_name(spec.name)
        assert name in pins, f"{lock}: {spec.name} is not pinned: run hack/image/lock.sh"
        assert spec.specifier.contains(pins[name], prereleases=True), (
            f"{lock}: {name}=={pins[name]} does not satisfy {spec}: run hack/image/lock.sh"
        )


def test_every_production_dependency_is_pinned_and_nothing_else_declared():
    assert_pins("requirements.lock", PYPROJECT["project"]["dependencies"])
    pins = {name for name, _, _ in locked(ROOT / "requirements.lock")}
    assert not pins & extras(), "a test, dev or bench package is in the production lock"
    assert "selfheal" not in pins


def test_the_build_backend_is_pinned():
    assert_pins("requirements-build.lock", PYPROJECT["build-system"]["requires"])


def test_every_pin_carries_hashes():
    for lock in ("requirements.lock", "requirements-build.lock"):
        text = (ROOT / lock).read_text()
        assert len(ENTRY.findall(text)) == len(locked(ROOT / lock)) > 0, lock


def test_the_dockerfile_keeps_python_slim_as_the_default_base_and_installs_from_the_lock():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "ARG BASE=python:3.12-slim\n" in dockerfile
    assert re.findall(r"^FROM (\S+)", dockerfile, re.MULTILINE) == ["${BASE}", "${BASE}"]
    assert "--require-hashes --no-deps -r /tmp/requirements.lock" in dockerfile
    assert re.search(r"^USER 65532:65532$", dockerfile, re.MULTILINE)
