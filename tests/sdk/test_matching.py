"""Which held patch answers an error (bootstrap patches, the fake registry): the shared cases
(tests/vectors/matching.json), kept equal to the registry's own rules (`selfheal.core.matching`)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from molam.matching import best_match
from tests.sdk import vectors

MATCHING = json.loads((vectors.DIRECTORY / "matching.json").read_text(encoding="utf-8"))
PATCHES = [SimpleNamespace(**patch) for patch in MATCHING["patches"]]


@pytest.mark.parametrize("case", MATCHING["cases"], ids=lambda case: case["name"])
def test_matching_vector(case):
    found = best_match(PATCHES, **case["error"])
    assert (None if found is None else {"patch_id": found[0].id, "kind": found[1]}) == case["expect"]


@pytest.mark.parametrize("case", MATCHING["cases"], ids=lambda case: case["name"])
def test_the_registry_chooses_the_same_patch(case):
    from selfheal.core.matching import Candidate, ErrorReport
    from selfheal.core.matching import best_match as registry_best_match

    # The registry breaks the last ties by update time; the sequence number the SDK sees rises with it.
    candidates = [
        Candidate(
            id=p.id,
            sdk_language="python",
            error_signature=p.error_signature,
            severity=p.severity,
            updated_at=float(p.sequence),
        )
        for p in PATCHES
    ]
    error = case["error"]
    found = registry_best_match(candidates, ErrorReport("python", error["message"], error["status"], error["code"]))
    assert (None if found is None else {"patch_id": found.candidate.id, "kind": found.kind}) == case["expect"]
