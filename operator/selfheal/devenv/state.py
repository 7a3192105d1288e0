"""The JSON state file that lets `down` (a later process) find what `up` started."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

STATE_FILE = "state.json"


def default_state_dir() -> Path:
    """`$SELFHEAL_STATE_DIR`, else `~/.local/state/selfheal/dev`."""
    env = os.environ.get("SELFHEAL_STATE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".local" / "state" / "selfheal" / "dev"


def load(state_dir: Path) -> dict[str, Any]:
    """The recorded state, or {} when nothing was started."""
    try:
        recorded: dict[str, Any] = json.loads((state_dir / STATE_FILE).read_text())
    except FileNotFoundError:
        return {}
    return recorded


def save(state_dir: Path, state: dict[str, Any]) -> None:
    """Write atomically: a crash mid-write must not lose the PIDs of live daemons."""
    state_dir.mkdir(parents=True, exist_ok=True)
    tmp = state_dir / f".{STATE_FILE}.tmp"
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, state_dir / STATE_FILE)


def remove(state_dir: Path) -> None:
    (state_dir / STATE_FILE).unlink(missing_ok=True)
