"""Patches a client starts with: signed envelopes read from a file (`bootstrap_envelopes=PATH`).

The file holds what the registry serves: a JSON list of envelopes (`selfheal.patch.v1`) or of
the registry's answers (`{"patch", "envelope"}`, as `POST /api/dev/self-heal` returns them), or
an object `{"envelopes": [...]}`; a single envelope or answer is a list of one.

Each envelope is verified exactly as a served one: a pinned key signed its exact bytes, it has
not expired, it is for this SDK's language, it is no older than one already accepted. One that
fails is skipped with a warning naming the file, the entry and the reason, and the client
starts without it: a stale or tampered file must neither stop an application from starting nor
give it an unverified patch. A file that cannot be read, or is not such a document, is a
ConfigurationError: that is the application's own configuration, wrong from the start.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from molam.envelope import ENVELOPE_FORMAT, ReplayGuard, TrustedKeys, VerifiedPatch, open_envelope
from molam.errors import ConfigurationError, PatchRefused

log = logging.getLogger("molam")

OPTION = "bootstrap_envelopes"


@dataclass(frozen=True)
class Bootstrap:
    source: str  # the file, as given
    patches: tuple[VerifiedPatch, ...]  # verified; the newest per patch id
    skipped: tuple[str, ...]  # "entry N: reason", also logged


def load_bootstrap(path: object, *, trusted: TrustedKeys, replay: ReplayGuard, now: datetime) -> Bootstrap:
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise ConfigurationError("must be a file path", option=OPTION)
    source = os.fspath(path)
    try:
        data = Path(source).read_bytes()
    except OSError as error:
        raise ConfigurationError(f"cannot read {source}: {error.strerror or error}", option=OPTION) from None
    try:
        document = json.loads(data)
    except ValueError as error:
        raise ConfigurationError(f"{source} is not JSON: {error}", option=OPTION) from None
    entries = _entries(document)
    if entries is None:
        raise ConfigurationError(
            f'{source} must hold a list of envelopes, or an object with an "envelopes" list', option=OPTION
        )
    patches: dict[str, VerifiedPatch] = {}
    skipped: list[str] = []
    for index, entry in enumerate(entries):
        try:
            patch = open_envelope(_envelope(entry), trusted=trusted, now=now, replay=replay)
        except PatchRefused as why:
            skipped.append(f"entry {index}: {why}")
            log.warning("Molam SDK: %s %s: entry %d skipped: %s", OPTION, source, index, why)
            continue
        patches[patch.id] = patch  # the replay guard let it through: it is the newest seen for its id
    log.info("Molam SDK: %s %s: %d verified patches, %d skipped", OPTION, source, len(patches), len(skipped))
    return Bootstrap(source, tuple(patches.values()), tuple(skipped))


def _entries(document: Any) -> list[Any] | None:
    if isinstance(document, list):
        return document
    if isinstance(document, dict):
        if "envelopes" in document:
            return document["envelopes"] if isinstance(document["envelopes"], list) else None
        if "format" in document or "envelope" in document:
            return [document]
    return None


def _envelope(entry: Any) -> Any:
    """An envelope, or the envelope of a registry answer."""
    if isinstance(entry, dict) and "envelope" in entry and entry.get("format") != ENVELOPE_FORMAT:
        return entry["envelope"]
    return entry
