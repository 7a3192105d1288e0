"""SelfHealPatch YAML checked offline, with each problem at its line in the file (pure logic).

Every document of a file is read; documents of other kinds are skipped (a GitOps repository
holds many). A SelfHealPatch goes through the same validation as in the operator, and each
problem is placed on the line of the field it names — for patch code, on the line of the code
itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from selfheal.core.models import SpecError
from selfheal.core.patchlang import AllowedHosts
from selfheal.core.resource import GROUP, KIND, VERSION
from selfheal.core.validation import validate_patch

MAX_FILE_BYTES = 1_000_000
_CODE_POSITION = re.compile(r"(\d+):(\d+): ")


@dataclass(frozen=True)
class Problem:
    line: int
    field: str
    reason: str


@dataclass
class FileReport:
    documents: int = 0  # SelfHealPatch documents checked
    problems: list[Problem] = field(default_factory=list)


def check_file(path: Path, *, allowed_hosts: AllowedHosts) -> FileReport:
    report = FileReport()
    try:
        data = path.read_bytes()
        if len(data) > MAX_FILE_BYTES:
            report.problems.append(Problem(1, "file", f"larger than {MAX_FILE_BYTES} bytes"))
            return report
        documents = list(yaml.compose_all(data.decode("utf-8"), Loader=yaml.SafeLoader))
    except UnicodeDecodeError:
        report.problems.append(Problem(1, "file", "not UTF-8 text"))
        return report
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        report.problems.append(Problem(mark.line + 1 if mark else 1, "yaml", str(getattr(error, "problem", error))))
        return report
    if not any(node is not None for node in documents):
        report.problems.append(
            Problem(1, "file", "empty: no YAML document (a SelfHealPatch file that lost its content?)")
        )
        return report
    for node in documents:
        if not isinstance(node, yaml.MappingNode):
            continue
        kind = _scalar(node, "kind")
        if kind == KIND:
            report.documents += 1
            report.problems += _check_document(node, allowed_hosts)
        elif _looks_like_ours(node, kind):
            # A typo would otherwise be skipped as "another kind" and the pull request pass.
            report.problems.append(Problem(node.start_mark.line + 1, "kind", f"{kind!r} is not {KIND!r}"))
    return report


def _looks_like_ours(node: yaml.MappingNode, kind: str | None) -> bool:
    """A kind spelled like SelfHealPatch, or any kind in our API group."""
    api_version = _scalar(node, "apiVersion") or ""
    normalized = (kind or "").replace("-", "").replace("_", "").lower()
    return normalized in (KIND.lower(), KIND.lower() + "s") or api_version.split("/")[0] == GROUP


def _child(node: yaml.Node, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
                return key_node, value_node
    return None


def _scalar(node: yaml.Node, key: str) -> str | None:
    found = _child(node, key)
    return found[1].value if found and isinstance(found[1], yaml.ScalarNode) else None


def _check_document(node: yaml.MappingNode, hosts: AllowedHosts) -> list[Problem]:
    line = node.start_mark.line + 1
    problems = []
    if _scalar(node, "apiVersion") != f"{GROUP}/{VERSION}":
        problems.append(Problem(line, "apiVersion", f"must be {GROUP}/{VERSION}"))
    metadata = _child(node, "metadata")
    if metadata is None or not _scalar(metadata[1], "name"):
        problems.append(Problem(line, "metadata.name", "is required"))
    spec = _child(node, "spec")
    if spec is None:
        return problems + [Problem(line, "spec", "is required")]
    try:
        raw = yaml.safe_load(yaml.serialize(spec[1]))
        validate_patch(raw, allowed_hosts=hosts)
    except SpecError as error:
        problems += [_placed(problem, spec) for problem in error.problems]
    except yaml.YAMLError as error:
        problems.append(Problem(spec[0].start_mark.line + 1, "spec", str(error)))
    return problems


def _placed(problem: str, spec: tuple[yaml.Node, yaml.Node]) -> Problem:
    """`spec.field: reason` → the line of that field, or of the code line the compiler names."""
    name, _, reason = problem.partition(": ")
    found = _child(spec[1], name.removeprefix("spec.").split(".")[0])
    if found is None:
        return Problem(spec[0].start_mark.line + 1, name, reason)
    value = found[1]
    line = value.start_mark.line + 1
    position = _CODE_POSITION.match(reason)
    if position and isinstance(value, yaml.ScalarNode):
        # A block scalar (`|`) starts on the line after its indicator.
        line += int(position[1]) if value.style in ("|", ">") else int(position[1]) - 1
    return Problem(line, name, reason)
