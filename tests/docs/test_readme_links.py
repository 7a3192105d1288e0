"""The README's links resolve, it links the newcomer's docs, and its compatibility table says the
versions the repository pins and declares."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

from tests.docs.markdown import ROOT, anchors, links, section, table_rows

README = ROOT / "README.md"
CHECKED = [README, ROOT / "CHANGELOG.md", ROOT / "docs" / "architecture.md", ROOT / "docs" / "status.md"]


def _broken_links(doc: Path) -> list[str]:
    broken = []
    for target in links(doc.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto: are not the repository's
        path, _, anchor = target.partition("#")
        resolved = (doc.parent / path).resolve() if path else doc
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved.read_text(encoding="utf-8")):
            broken.append(f"{target}: no heading with anchor #{anchor}")
    return broken


def test_every_relative_link_resolves():
    broken = {doc.name: found for doc in CHECKED if (found := _broken_links(doc))}
    assert not broken, broken


def test_a_broken_link_is_found(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text("## Here\n[ok](#here) [gone](missing.md) [no anchor](#there) `[code](x.md)`\n```\n[x](y.md)\n```\n")
    assert _broken_links(doc) == ["missing.md: no such file", "#there: no heading with anchor #there"]


def test_the_readme_links_the_newcomer_docs():
    text = README.read_text(encoding="utf-8")
    targets = set(links(text))
    assert {"docs/architecture.md", "docs/status.md", "CHANGELOG.md", "LICENSE", "#compatibility"} <= targets
    assert "docs/status.md" in links(section(text, "The SelfHealPatch resource"))


def test_license_is_apache_2_with_the_authors():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("Copyright 2026 The selfheal authors\n")
    assert "Apache License" in text and "Version 2.0, January 2004" in text


def _compatibility() -> dict[str, list[str]]:
    rows = table_rows(section(README.read_text(encoding="utf-8"), "Compatibility"))
    return {cells[0].split(" (")[0]: cells[1:] for cells in rows}


GO_MODULES = ("controlplane/kubernetes", "controlplane/etcd", "helm")


def _go_mod(module_dir: str, module: str) -> str:
    text = (ROOT / "hack" / module_dir / "go.mod").read_text()
    found = re.search(rf"^\s*{re.escape(module)} (v\S+)", text, re.M)
    assert found, f"{module} not in hack/{module_dir}/go.mod"
    return found.group(1)


def _go_directive(module_dir: str) -> str:
    found = re.search(r"^go (\S+)$", (ROOT / "hack" / module_dir / "go.mod").read_text(), re.M)
    assert found, f"no go directive in hack/{module_dir}/go.mod"
    return found.group(1)


def _versions(cell: str) -> list[str]:
    return re.findall(r"v\d+\.\d+\.\d+", cell)


def test_kubernetes_etcd_and_helm_are_the_pinned_ones():
    table = _compatibility()
    assert _versions(table["Kubernetes"][0]) == [_go_mod("controlplane/kubernetes", "k8s.io/kubernetes")]
    assert _versions(table["etcd"][0]) == [_go_mod("controlplane/etcd", "go.etcd.io/etcd/server/v3")]
    assert _versions(table["Helm"][0]) == [_go_mod("helm", "helm.sh/helm/v4")]


def _locked(name: str) -> str:
    found = re.search(rf"^{re.escape(name)}==(\S+)", (ROOT / "requirements.lock").read_text(), re.M)
    assert found, f"{name} not pinned in requirements.lock"
    return found.group(1)


def test_kopf_and_psycopg_are_the_locked_ones():
    table = _compatibility()
    assert re.findall(r"\d+\.\d+\.\d+", table["kopf"][0]) == [_locked("kopf")]
    assert re.findall(r"\d+\.\d+\.\d+", table["psycopg"][0]) == [_locked("psycopg"), _locked("psycopg-pool")]
    assert _locked("psycopg-binary") == _locked("psycopg")


def _requirement(dependencies: list[str], name: str) -> str:
    return next(d for d in dependencies if re.match(rf"{re.escape(name)}\b(?![-\w])", d))


def test_declared_minimums_are_the_packages_own():
    table = _compatibility()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    sdk = tomllib.loads((ROOT / "sdk" / "python" / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == sdk["requires-python"]
    assert f"`{project['requires-python']}`" in table["Python"][1]
    engines = json.loads((ROOT / "sdk" / "node" / "package.json").read_text())["engines"]["node"]
    assert f"`{engines}`" in table["Node.js"][1]
    kopf = _requirement(project["dependencies"], "kopf")
    assert f"`{kopf.removeprefix('kopf')}`" in table["kopf"][1]
    for name in ("psycopg", "psycopg-pool"):
        assert _requirement(project["dependencies"], name) in table["psycopg"][1]
    go = {_go_directive(d) for d in GO_MODULES}
    assert [f"`go {version}`" for version in sorted(go)] == re.findall(r"`go [\d.]+`", table["Go"][1])
