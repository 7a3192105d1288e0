"""The Mermaid diagrams cannot rot: every block parses with Mermaid's own parser, the status diagram
holds every reason of core/status.py inside the state the code gives it, and the paths the
architecture names exist."""

from __future__ import annotations

import re

import pytest

from selfheal.core import status as core
from tests.docs.markdown import ROOT, markdown_files, mermaid_blocks, parse_mermaid, table_rows

ARCHITECTURE = ROOT / "docs" / "architecture.md"
STATUS = ROOT / "docs" / "status.md"
DIAGRAM_TYPES = ("flowchart", "graph", "stateDiagram-v2", "stateDiagram", "sequenceDiagram", "classDiagram")
_OPEN, _CLOSE = "([{", ")]}"


def structural_problems(text: str) -> list[str]:
    """What a reader can see is wrong without Mermaid: an unknown diagram type, unbalanced brackets
    or quotes, a `subgraph` or multi-line `note` without its `end`."""
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("%%")]
    if not lines:
        return ["empty diagram"]
    problems = []
    kind = lines[0].split()[0]
    if kind not in DIAGRAM_TYPES:
        problems.append(f"line 1: unknown diagram type {kind!r}, expected one of {', '.join(DIAGRAM_TYPES)}")
    stack: list[str] = []
    for number, line in enumerate(lines, 1):
        if line.count('"') % 2:
            problems.append(f"line {number}: unbalanced double quote: {line}")
        for char in re.sub(r'"[^"]*"', "", line):
            if char in _OPEN:
                stack.append(char)
            elif char in _CLOSE and (not stack or _OPEN.index(stack.pop()) != _CLOSE.index(char)):
                problems.append(f"line {number}: unbalanced {char!r}: {line}")
    if stack:
        problems.append(f"unclosed {''.join(stack)!r}")
    words = [line.split()[0] for line in lines]
    if kind in {"flowchart", "graph"} and words.count("subgraph") != words.count("end"):
        problems.append(f"{words.count('subgraph')} subgraph but {words.count('end')} end")
    notes = sum(1 for line in lines if line.startswith("note ") and ":" not in line)
    if notes != sum(1 for line in lines if line == "end note"):
        problems.append("a multi-line note without its 'end note'")
    return problems


BLOCKS = [(path.relative_to(ROOT), block) for path in markdown_files() for block in mermaid_blocks(path)]


@pytest.fixture(scope="module")
def parsed() -> dict[str, dict]:
    texts = [block for _, block in BLOCKS]
    return dict(zip(texts, parse_mermaid(texts)))


def _status_diagram(parsed: dict[str, dict]) -> dict:
    blocks = mermaid_blocks(STATUS)
    diagrams = [parsed[block] for block in blocks if parsed[block].get("type", "").startswith("state")]
    assert len(diagrams) == 1, f"{STATUS.name} should hold one state diagram, found {len(diagrams)}"
    return diagrams[0]


def test_the_docs_have_their_diagrams(parsed):
    architecture = [parsed[block]["type"] for block in mermaid_blocks(ARCHITECTURE)]
    assert architecture and all(kind.startswith("flowchart") for kind in architecture), architecture
    assert _status_diagram(parsed)


def test_every_mermaid_block_is_structurally_sound():
    problems = {f"{path} block {i}": p for i, (path, block) in enumerate(BLOCKS) if (p := structural_problems(block))}
    assert not problems, problems


def test_every_mermaid_block_parses_with_mermaid(parsed):
    failed = {
        f"{path}: {block.splitlines()[0]}": parsed[block]["error"][:300]
        for path, block in BLOCKS
        if not parsed[block]["ok"]
    }
    assert not failed, failed


def test_the_checks_catch_a_broken_diagram():
    broken = 'flowchart TD\n    a["open --> b\n    subgraph x\n'
    assert len(structural_problems(broken)) == 3
    assert structural_problems("flowchrt TD\n  a --> b\n")
    results = parse_mermaid([broken, "stateDiagram-v2\n    [*] --> \n", "flowchrt TD\n  a --> b\n"])
    assert [result["ok"] for result in results] == [False, False, False], results


def _reasons() -> set[str]:
    return {value for name, value in vars(core).items() if name.startswith("REASON_")}


def _summary_of(reason: str) -> tuple[str, str]:
    """(state, reason) that core.status computes for a patch in this reason."""
    now, generation = "2026-01-01T00:00:00Z", 1
    served = core.RegistryState(id="1", version="1.0.0", active=True, source_generation=generation)
    active = core.synced_status({}, generation=generation, row=served, now=now)
    assert (active["state"], active["reason"]) == ("Active", "Synced")
    if reason == core.REASON_INVALID_SPEC:
        status = core.invalid_status(active, generation=2, problems=["spec.patchCode: refused"], now=now)
    elif reason == core.REASON_REGISTRY_UNAVAILABLE:
        status = core.unavailable_status(active, generation=2, error="connection refused", now=now)
    else:  # the reasons of a row the registry does not serve, mirrored into the Active condition
        off = core.RegistryState(
            id="1", version="1.0.1", active=False, source_generation=generation, deactivation_reason=reason
        )
        status = core.registry_status(active, generation=generation, row=off, now=now)
    return status["state"], status["reason"]


def test_every_reason_sits_in_the_state_the_code_gives_it(parsed):
    states = _status_diagram(parsed)["states"]
    assert states.get("Active") == "", "Active should be a top-level state"
    wrong = {}
    for reason in sorted(_reasons()):
        state, shown = _summary_of(reason)
        assert shown == reason, f"core.status shows {shown!r} for {reason!r}: update this test's mapping"
        if states.get(reason) != state or states.get(state) != "":
            wrong[reason] = f"expected inside top-level state {state!r}, diagram has {states.get(reason, 'nothing')!r}"
    assert not wrong, wrong


def test_every_reason_has_a_way_in_and_a_way_back(parsed):
    diagram = _status_diagram(parsed)
    states, transitions = diagram["states"], diagram["transitions"]
    missing = {}
    for reason in sorted(_reasons()):
        ins = [label for source, target, label in transitions if target == reason and label]
        outs = [label for source, target, label in transitions if source in {reason, states.get(reason)} and label]
        if not ins or not outs:
            missing[reason] = f"{len(ins)} labelled ways in, {len(outs)} labelled ways back"
    assert not missing, missing


def test_the_reasons_table_matches_the_code():
    rows = {cells[1].strip("`"): cells[0].strip("`") for cells in table_rows(STATUS.read_text()) if len(cells) > 1}
    expected = {reason: _summary_of(reason)[0] for reason in _reasons()}
    assert {reason: rows.get(reason) for reason in expected} == expected


def test_every_path_the_diagrams_docs_name_exists():
    """Backquoted repository paths (`operator/selfheal/api/`, `controller/status_writes.py`), from
    the repository root or the package root."""
    missing = []
    for doc in (ARCHITECTURE, STATUS):
        for token in re.findall(r"`([a-z_][\w-]*/[\w./-]*)`", doc.read_text()):
            if not any((base / token).exists() for base in (ROOT, ROOT / "operator" / "selfheal")):
                missing.append(f"{doc.name}: {token}")
    assert not missing, missing
