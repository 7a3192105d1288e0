"""What every SelfHealPatch last showed, kept from kopf's events and read through `PatchViews`.

The registry watch and the guard loop run outside handlers; they read the resources from here,
which kopf's events keep current, instead of asking the API server every few seconds.

Not a `kopf.index`: over a backlog, kopf holds every object's handlers until all are indexed and
wakes every waiting object each time one more is indexed (N² wake-ups: minutes at 10,000 objects).
An event handler sees the same events without that wait; the loops already take objects as they
come (an object not seen yet is skipped, as it was while the index filled).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from typing import Any, TypedDict

import kopf

from selfheal.core.resource import ANNOTATION_DISABLE, ANNOTATION_REACTIVATE, GROUP, PLURAL, VERSION
from selfheal.core.status import ACTIVE, Condition, PatchStatus

Key = tuple[str, str]  # (namespace, name)


class PatchView(TypedDict):
    uid: str | None
    generation: int | None
    resource_version: str | None
    guard: dict[str, Any] | None  # spec.guard: the patch's own guard settings
    disable: str | None  # the kill-switch annotation's reason, when set
    reactivate: str | None  # the reactivation annotation's token, when set
    status: PatchStatus


@kopf.on.event(GROUP, VERSION, PLURAL)  # type: ignore[arg-type]  # kopf's protocols list every keyword
async def see_patch(
    event: dict[str, Any],
    namespace: str,
    name: str,
    spec: kopf.Spec,
    meta: kopf.Meta,
    status: kopf.Status,
    memo: Any,
    **_: Any,
) -> None:
    key = (namespace, name)
    if event.get("type") == "DELETED":
        memo.views.forget(key)
        return
    memo.views.see(key, view_of(spec=spec, meta=meta, status=status))


def view_of(*, spec: Mapping[str, Any], meta: Mapping[str, Any], status: Mapping[str, Any]) -> PatchView:
    """What the guard keeps of an object (a benchmark or a test builds views the same way)."""
    annotations = meta.get("annotations") or {}
    return PatchView(
        uid=meta.get("uid"),
        generation=meta.get("generation"),
        resource_version=meta.get("resourceVersion"),
        guard=spec.get("guard"),
        disable=annotations.get(ANNOTATION_DISABLE),
        reactivate=annotations.get(ANNOTATION_REACTIVATE),
        status=_compact(dict(status)),
    )


def _compact(value: Any) -> Any:
    """A copy of its own (the event's body can go), its short strings shared: 10,000 objects' views
    repeat the same condition types, reasons and messages."""
    if isinstance(value, str):
        return sys.intern(value) if len(value) <= 200 else value
    if isinstance(value, dict):
        return {sys.intern(key): _compact(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_compact(item) for item in value]
    return value


class PatchViews:
    """The last view of every object kopf has shown us."""

    def __init__(self) -> None:
        self._views: dict[Key, PatchView] = {}

    def see(self, key: Key, view: PatchView) -> None:
        self._views[key] = view

    def forget(self, key: Key) -> None:
        self._views.pop(key, None)

    def get(self, key: Key) -> PatchView | None:
        return self._views.get(key)

    def items(self) -> Iterator[tuple[Key, PatchView]]:
        """A snapshot: loops may await between items while kopf's events change the views."""
        yield from list(self._views.items())

    def remember_status(self, key: Key, status: PatchStatus) -> None:
        """What we just wrote, until kopf's next event brings the object back."""
        view = self.get(key)
        if view is not None:
            view["status"] = status


def active_condition(view: PatchView) -> Condition | None:
    return next((c for c in view["status"].get("conditions") or [] if c.get("type") == ACTIVE), None)
