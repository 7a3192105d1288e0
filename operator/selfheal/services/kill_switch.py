"""The incident kill switch and its reversal: one implementation for every way in.

`selfheal disable/enable`, `DELETE /api/dev/patches/{id}` and the operator acting on the
disable and reactivate annotations all call these functions. The registry row goes off (or
back on) at once in one transaction with its audit row; the annotation on the SelfHealPatch
keeps it off across spec changes until `selfheal enable`. Spec is never written, so GitOps
tools have nothing to revert.
"""

from __future__ import annotations

import asyncio
import datetime
import uuid
from dataclasses import dataclass

import kubernetes
import psycopg

from selfheal.core.resource import ANNOTATION_DISABLE, ANNOTATION_REACTIVATE, GROUP, PLURAL, VERSION
from selfheal.core.status import REASON_MANUAL_KILL_SWITCH
from selfheal.registry import activation
from selfheal.services import kube


@dataclass(frozen=True)
class KillSwitchResult:
    found: bool
    switched_off: bool
    source: tuple[str, str] | None


async def switch_off(
    conn: psycopg.AsyncConnection, *, patch_id: str, actor: str, reason: str, via: str | None = None
) -> activation.Deactivated | None:
    """The registry row off now, reason ManualKillSwitch; None when it was already off."""
    details = {"reason": reason, "by": actor} | ({"via": via} if via else {})
    return await activation.deactivate(
        conn,
        patch_id=patch_id,
        reason=REASON_MANUAL_KILL_SWITCH,
        actor=actor,
        message=f"kill switch by {actor}: {reason}",
        details=details,
    )


async def switch_on(conn: psycopg.AsyncConnection, *, patch_id: str, actor: str, token: str | None) -> bool:
    """Back on, once per reactivation token; spec-driven deactivations need a spec change."""
    return await activation.reactivate(conn, patch_id=patch_id, actor=actor, token=token)


async def switch_off_by_id(database_url: str, *, patch_id: str, actor: str, reason: str) -> KillSwitchResult:
    """The API's way in: by registry id, on a connection of its own."""
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True, connect_timeout=3) as conn:
        source = await activation.source_of(conn, patch_id=patch_id)
        if source is None:
            return KillSwitchResult(found=False, switched_off=False, source=None)
        done = await switch_off(conn, patch_id=patch_id, actor=actor, reason=reason, via="api")
    namespace, name = source
    resource = (namespace, name) if namespace is not None and name is not None else None
    return KillSwitchResult(found=True, switched_off=done is not None, source=resource)


def reactivation_token(now: datetime.datetime) -> str:
    return f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


def annotate(
    namespace: str,
    name: str,
    annotations: dict[str, str | None],
    *,
    api: kubernetes.client.CustomObjectsApi | None = None,
) -> None:
    """Set (or, with None, remove) the kill-switch annotations; never touches spec."""
    (api or kube.custom_objects()).patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name, {"metadata": {"annotations": annotations}}
    )


def disable_annotations(reason: str) -> dict[str, str | None]:
    return {ANNOTATION_DISABLE: reason}


def enable_annotations(token: str) -> dict[str, str | None]:
    return {ANNOTATION_DISABLE: None, ANNOTATION_REACTIVATE: token}


async def annotate_disabled(api: kubernetes.client.CustomObjectsApi, *, namespace: str, name: str, reason: str) -> None:
    await asyncio.to_thread(annotate, namespace, name, disable_annotations(reason), api=api)


async def still_disabled(namespace: str, name: str) -> bool:
    """Ask the API server, not a cached view: a view that lags behind `selfheal enable`
    (annotation removed, registry row already back on) must not switch the patch off again."""
    try:
        body = await asyncio.to_thread(
            kube.custom_objects().get_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, name
        )
    except kubernetes.client.ApiException as error:
        if error.status == 404:
            return False
        raise
    annotations = (body.get("metadata") or {}).get("annotations") or {}  # type: ignore[attr-defined]
    return ANNOTATION_DISABLE in annotations


async def switch_off_resource(
    conn: psycopg.AsyncConnection, *, namespace: str, name: str, actor: str, reason: str
) -> bool:
    """The CLI's way in: by SelfHealPatch; False when the registry has no row for it yet."""
    patch_id = await activation.patch_id_for(conn, namespace=namespace, name=name)
    return (
        patch_id is not None
        and await switch_off(conn, patch_id=patch_id, actor=actor, reason=reason, via="cli") is not None
    )


async def switch_on_resource(
    conn: psycopg.AsyncConnection, *, namespace: str, name: str, actor: str, token: str
) -> bool:
    patch_id = await activation.patch_id_for(conn, namespace=namespace, name=name)
    return patch_id is not None and await switch_on(conn, patch_id=patch_id, actor=actor, token=token)
