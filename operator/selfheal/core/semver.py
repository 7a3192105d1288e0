"""Semantic versions as the registry orders them (pure logic)."""

from __future__ import annotations

import re

SEMVER_PATTERN = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$"
)


def is_semver(text: str) -> bool:
    return SEMVER_PATTERN.match(text) is not None


def _key(text: str) -> tuple[int, int, int, tuple[object, ...]]:
    match = SEMVER_PATTERN.match(text)
    if match is None:
        raise ValueError(f"not a semantic version: {text!r}")
    major, minor, patch, pre = match.groups()
    # A release sorts after its pre-releases; numeric identifiers sort before alphanumeric ones.
    pre_key: tuple[object, ...] = (
        (1,)
        if pre is None
        else (0, *((0, int(part), "") if part.isdigit() else (1, 0, part) for part in pre.split(".")))
    )
    return (int(major), int(minor), int(patch), pre_key)


def is_newer(candidate: str, current: str) -> bool:
    return _key(candidate) > _key(current)


def bump_patch(version: str) -> str:
    major, minor, patch, _ = _key(version)
    return f"{major}.{minor}.{patch + 1}"


def next_registry_version(*, current: str | None, declared: str, content_changed: bool) -> str:
    """The version the registry stores after a spec change.

    The runbook wants every modification to increment the version. The author's declared
    version wins when it moves forward; otherwise a content change bumps the patch level of
    what the registry already holds, so the registry version never repeats or goes back.
    """
    if current is None:
        return declared
    if is_newer(declared, current):
        return declared
    return bump_patch(current) if content_changed else current
