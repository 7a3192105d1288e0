"""The README's layout table is the tree: nothing listed is missing, nothing present is unlisted."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "operator" / "selfheal"


def _layout_rows() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Repository layout", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| `")]


def _listed_paths() -> set[str]:
    """Every backquoted path in the first column; `a`, `b` on one row are two paths."""
    paths = set()
    for row in _layout_rows():
        first_cell = row.split("|")[1]
        paths.update(path.rstrip("/") for path in re.findall(r"`([^`]+)`", first_cell))
    return paths


def _package_folders() -> set[str]:
    return {str(init.parent.relative_to(ROOT)) for init in PACKAGE.rglob("__init__.py")} | {
        str(folder.relative_to(ROOT)) for folder in PACKAGE.rglob("migrations") if folder.is_dir()
    }


def _top_level_entries() -> set[str]:
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    ignored = {".gitignore", ".dockerignore", "README.md", "LICENSE", "CHANGELOG.md"}
    return {line.split("/", 1)[0] for line in tracked.splitlines()} - ignored


def test_every_listed_path_exists():
    missing = sorted(path for path in _listed_paths() if not (ROOT / path).exists())
    assert not missing, f"README layout lists paths that do not exist: {missing}"


def test_every_package_folder_is_listed():
    unlisted = sorted(_package_folders() - _listed_paths())
    assert not unlisted, f"README layout does not list these package folders: {unlisted}"


def test_every_top_level_entry_is_listed():
    listed_tops = {path.split("/", 1)[0] for path in _listed_paths()}
    unlisted = sorted(_top_level_entries() - listed_tops)
    assert not unlisted, f"README layout does not list these top-level entries: {unlisted}"
