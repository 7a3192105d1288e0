"""This build's version, for `selfheal_build_info` and `--version`."""

from __future__ import annotations

from importlib import metadata


def version() -> str:
    try:
        return metadata.version("selfheal")
    except metadata.PackageNotFoundError:  # run from a source tree without installing it
        return "0+unknown"
