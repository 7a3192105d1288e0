"""What every SelfHealPatch last showed: one kopf index, read through `PatchViews`.

The registry watch and the guard loop run outside handlers; they read the resources from this
index, which kopf keeps current, instead of asking the API server every few seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
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


@kopf.index(GROUP, VERSION, PLURAL)  # type: ignore[arg-type]  # kopf's protocols list every keyword
def selfhealpatches(
    namespace: str, name: str, spec: kopf.Spec, meta: kopf.Meta, status: kopf.Status, **_: Any
) -> dict[Key, PatchView]:
    annotations = meta.get("annotations") or {}
    return {
        (namespace, name): PatchView(
            uid=meta.get("uid"),
            generation=meta.get("generation"),
            resource_version=meta.get("resourceVersion"),
            guard=spec.get("guard"),
            disable=annotations.get(ANNOTATION_DISABLE),
            reactivate=annotations.get(ANNOTATION_REACTIVATE),
            status=dict(status),  # type: ignore[typeddict-item]
        )
    }


@kopf.on.startup()  # type: ignore[arg-type]
async def bind_views(memo: Any, selfhealpatches: kopf.Index, **_: Any) -> None:
    memo.views.bind(selfhealpatches)


class PatchViews:
    """Read access to the index; empty until the startup handler binds it."""

    def __init__(self) -> None:
        self._index: kopf.Index | None = None

    def bind(self, index: kopf.Index) -> None:
        self._index = index

    def get(self, key: Key) -> PatchView | None:
        if self._index is None:
            return None
        return next(iter(self._index.get(key, ())), None)

    def items(self) -> Iterator[tuple[Key, PatchView]]:
        """A snapshot of the keys: loops may await between items while kopf updates the index."""
        if self._index is None:
            return
        for key, store in list(self._index.items()):
            view = next(iter(store), None)
            if view is not None:
                yield key, view

    def remember_status(self, key: Key, status: PatchStatus) -> None:
        """What we just wrote, until kopf's next event brings the object back."""
        view = self.get(key)
        if view is not None:
            view["status"] = status


def active_condition(view: PatchView) -> Condition | None:
    return next((c for c in view["status"].get("conditions") or [] if c.get("type") == ACTIVE), None)
