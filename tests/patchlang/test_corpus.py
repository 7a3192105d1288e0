"""Every hostile snippet is refused, for the reason stated beside it, with a position."""

from __future__ import annotations

import pytest

from selfheal.core.patchlang import PatchCodeError, compile_patch
from tests.patchlang.corpus import NODE, PYTHON


def _refusal(language: str, code: str) -> PatchCodeError:
    with pytest.raises(PatchCodeError) as caught:
        compile_patch(language=language, code=code)
    return caught.value


@pytest.mark.parametrize(("code", "reason"), PYTHON, ids=[code[:40] for code, _ in PYTHON])
def test_python_corpus_is_refused_for_its_reason(code, reason):
    error = _refusal("python", code)
    assert reason in error.reason
    assert error.line >= 1 and error.column >= 1


@pytest.mark.parametrize(("code", "reason"), NODE, ids=[code[:40] for code, _ in NODE])
def test_javascript_corpus_is_refused_for_its_reason(code, reason):
    error = _refusal("node", code)
    assert reason in error.reason
    assert error.line >= 1 and error.column >= 1


def test_each_corpus_has_at_least_forty_snippets():
    assert len(PYTHON) >= 40 and len(NODE) >= 40
    assert len({code for code, _ in PYTHON}) == len(PYTHON) and len({code for code, _ in NODE}) == len(NODE)
