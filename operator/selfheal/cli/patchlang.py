"""`selfheal compile` and `selfheal check`: the patch compiler for people and pipelines.

Both run offline, with the same model, schema rules and compiler as the operator and its
admission webhook, so a GitOps pull request fails where the cluster would.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import click

from selfheal.cli.options import allowed_hosts_option
from selfheal.core.patchlang import MAX_CODE_CHARS, AllowedHosts, PatchCodeError, compile_patch
from selfheal.core.patchlang.operations import canonical_json


@click.command("compile")
@click.option(
    "--language",
    "-l",
    type=click.Choice(["python", "node"]),
    required=True,
    help="SDK language the patch code is written in.",
)
@allowed_hosts_option
def compile_command(language: str, allowed_hosts: AllowedHosts) -> None:
    """Compile patch code from standard input to its operations (canonical JSON on stdout).

    \b
    Exit 1 with `line:column: reason` on stderr when the code is not a patch:
      echo 'self.base_url = "https://api-backup.molam.com"' | selfheal compile -l python
    """
    data = sys.stdin.buffer.read(4 * MAX_CODE_CHARS + 1)  # never read more than a patch can be
    try:
        code = data.decode("utf-8")
    except UnicodeDecodeError:
        code = None
    try:
        if code is None:
            raise PatchCodeError(1, 1, "input is not UTF-8 text")
        compiled = compile_patch(language=language, code=code, allowed_hosts=allowed_hosts)
    except PatchCodeError as error:
        click.echo(str(error) + _other_language_hint(code, language, allowed_hosts), err=True)
        sys.exit(1)
    click.echo(canonical_json(compiled.document()))


def _other_language_hint(code: str | None, language: str, allowed_hosts: AllowedHosts) -> str:
    """When the code compiles as the other SDK language, it was plainly written in that one."""
    other = "node" if language == "python" else "python"
    if not code:
        return ""
    try:
        compile_patch(language=other, code=code, allowed_hosts=allowed_hosts)
    except PatchCodeError:
        return ""
    return f" (hint: this is {other} patch code; try --language {other})"


@click.command("check")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@allowed_hosts_option
def check_command(paths: tuple[Path, ...], allowed_hosts: AllowedHosts) -> None:
    """Validate SelfHealPatch YAML files and folders offline (every document of every file).

    Folders are searched for *.yaml and *.yml. Other kinds of documents are skipped. Prints
    `file:line: field: reason` for each problem and exits 1 if there is any: run it on every
    pull request of a GitOps repository.
    """
    from selfheal.services.offline_check import check_file

    files = sorted({file for path in paths for file in _yaml_files(path)})
    problems = documents = 0
    for file in files:
        report = check_file(file, allowed_hosts=allowed_hosts)
        documents += report.documents
        problems += len(report.problems)
        for problem in report.problems:
            click.echo(f"{file}:{problem.line}: {problem.field}: {problem.reason}")
    click.echo(
        f"checked {documents} SelfHealPatch document(s) in {len(files)} file(s): {problems or 'no'} problem(s)",
        err=True,
    )
    sys.exit(1 if problems else 0)


def _yaml_files(path: Path) -> Iterator[Path]:
    if path.is_dir():
        yield from (file for file in path.rglob("*") if file.suffix in (".yaml", ".yml") and file.is_file())
    else:
        yield path
