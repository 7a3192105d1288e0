"""The patch language: patch code is data, compiled to operations, never executed.

Start with `operations` (what a patch may do), then `python_subset` and `javascript_subset`
(how each SDK language writes it), `bounds` (which values are allowed), `characters` (what the
source may not contain anywhere) and `compiler`.
Pure code: no Kubernetes, database or HTTP import.
"""

from selfheal.core.patchlang.compiler import MAX_CODE_CHARS, CompiledPatch, compile_patch
from selfheal.core.patchlang.errors import PatchCodeError
from selfheal.core.patchlang.hosts import DEFAULT_ALLOWED_HOSTS, DEFAULT_HOSTS, AllowedHosts
from selfheal.core.patchlang.operations import canonical_json

__all__ = [
    "DEFAULT_ALLOWED_HOSTS",
    "DEFAULT_HOSTS",
    "MAX_CODE_CHARS",
    "AllowedHosts",
    "CompiledPatch",
    "PatchCodeError",
    "canonical_json",
    "compile_patch",
]
