#!/usr/bin/env bash
# Regenerates the image's lock files from pyproject.toml, pinned with every file's hash:
#   requirements.lock        [project.dependencies]: what the image runs (no extra: no test, dev, bench)
#   requirements-build.lock  [build-system] requires: what builds the selfheal wheel, never installed in the image
# Universal (markers kept), so one lock serves Debian's Python 3.11 and python:3.12-slim alike.
# uv lives in a virtual environment of its own under the cache, never in the project's .venv.
set -euo pipefail
cd "$(dirname "$0")/../.."

UV_VERSION=0.13.9
tools="${XDG_CACHE_HOME:-$HOME/.cache}/selfheal/lock-tools"
if ! "$tools/bin/uv" --version 2>/dev/null | grep -qx "uv $UV_VERSION"; then
  python3 -m venv "$tools"
  "$tools/bin/pip" install --quiet "uv==$UV_VERSION"
fi

compile() {
  "$tools/bin/uv" pip compile --quiet --universal --python-version 3.11 --generate-hashes \
    --custom-compile-command "hack/image/lock.sh" "$@"
}
compile pyproject.toml -o requirements.lock
python3 -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]))' \
  | compile - -o requirements-build.lock
