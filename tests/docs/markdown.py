"""Reading the repository's Markdown: Mermaid blocks, links, headings, sections, tables; and Mermaid's own
parser (tests/docs/mermaid, installed from its lock file on first use, like the control plane's binaries)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PARSER_DIR = Path(__file__).resolve().parent / "mermaid"
_INSTALLED = PARSER_DIR / "node_modules" / ".installed"

MERMAID_BLOCK = re.compile(r"^```mermaid\n(.*?)^```", re.S | re.M)
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
_LINK = re.compile(r"(?<!!)\[[^\]\n]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6} +(.+?) *#*$", re.M)


def markdown_files() -> list[Path]:
    """Every Markdown file of the repository (not of installed dependencies)."""
    found = []
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in {"node_modules", "__pycache__"}]
        found += [Path(folder) / name for name in files if name.endswith(".md")]
    return sorted(found)


def mermaid_blocks(path: Path) -> list[str]:
    return MERMAID_BLOCK.findall(path.read_text(encoding="utf-8"))


def without_code(text: str) -> str:
    return _FENCE.sub("", text)


def links(text: str) -> list[str]:
    """Targets of the Markdown links outside code (blocks and inline)."""
    return _LINK.findall(re.sub(r"`[^`\n]*`", "", without_code(text)))


def anchors(text: str) -> set[str]:
    """The anchors GitHub gives the headings: lower case, punctuation dropped, spaces to hyphens."""
    slugs = set()
    for heading in _HEADING.findall(without_code(text)):
        plain = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading)
        slugs.add(re.sub(r"[^\w\- ]", "", plain.strip().lower()).replace(" ", "-"))
    return slugs


def section(text: str, heading: str) -> str:
    """The body of a `## heading` section, up to the next `## ` heading."""
    marker = f"\n## {heading}\n"
    if marker not in text:
        raise AssertionError(f"no section '## {heading}'")
    return text.split(marker, 1)[1].split("\n## ", 1)[0]


def table_rows(text: str) -> list[list[str]]:
    """The cells of every Markdown table row in `text`, header and separator rows left out."""
    rows = []
    for line in text.splitlines():
        if line.startswith("|") and not re.fullmatch(r"\|[-| :]+\|", line):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows[1:] if rows else rows


def _install_parser() -> None:
    lock = PARSER_DIR / "package-lock.json"
    if _INSTALLED.exists() and _INSTALLED.stat().st_mtime >= lock.stat().st_mtime:
        return
    if shutil.which("npm") is None or shutil.which("node") is None:
        raise AssertionError("the Mermaid parser needs Node.js 20+ and npm (tests/docs/mermaid/package.json)")
    done = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund"], cwd=PARSER_DIR, capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        raise AssertionError(f"npm ci in {PARSER_DIR} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    _INSTALLED.touch()


def parse_mermaid(texts: list[str]) -> list[dict]:
    """Mermaid's own parse of each text: {"ok", "type", and states/transitions or nodes/edges} or {"ok": False, "error"}."""
    _install_parser()
    done = subprocess.run(
        ["node", str(PARSER_DIR / "parse.mjs")], input=json.dumps(texts), capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        raise AssertionError(f"parse.mjs failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)
