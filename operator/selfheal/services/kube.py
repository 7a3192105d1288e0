"""Kubernetes access outside kopf handlers: status patches and events (official client, in threads)."""

from __future__ import annotations

import asyncio
import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import kubernetes

from selfheal.core.resource import GROUP, KIND, PLURAL, VERSION

_SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


@lru_cache(maxsize=1)
def api_client() -> kubernetes.client.ApiClient:
    # The usual rules: KUBECONFIG / ~/.kube/config, else the in-cluster service account.
    try:
        kubernetes.config.load_kube_config()
    except kubernetes.config.ConfigException:
        kubernetes.config.load_incluster_config()
    return kubernetes.client.ApiClient()


def context_namespace() -> str:
    """The namespace of the kubeconfig's current context, as kubectl uses it; `default` without one
    (and inside a cluster, the service account's namespace)."""
    try:
        _, current = kubernetes.config.list_kube_config_contexts()
    except kubernetes.config.ConfigException:
        try:
            return Path(_SERVICE_ACCOUNT_NAMESPACE).read_text().strip() or "default"
        except OSError:
            return "default"
    return (current.get("context") or {}).get("namespace") or "default"


def custom_objects() -> kubernetes.client.CustomObjectsApi:
    return kubernetes.client.CustomObjectsApi(api_client())


def core() -> kubernetes.client.CoreV1Api:
    return kubernetes.client.CoreV1Api(api_client())


def admission_registration() -> kubernetes.client.AdmissionregistrationV1Api:
    return kubernetes.client.AdmissionregistrationV1Api(api_client())


async def patch_status(
    *, namespace: str, name: str, status: dict[str, Any], resource_version: str | None = None
) -> bool:
    """Merge `status` in; with `resource_version`, only if the object has not changed since.

    Loops that rewrite the conditions list from a cached view pass the view's resourceVersion:
    a handler's newer status must win over a stale copy. False when that precondition failed.
    """
    body: dict[str, Any] = {"status": status}
    if resource_version is not None:
        body["metadata"] = {"resourceVersion": resource_version}
    try:
        await asyncio.to_thread(
            custom_objects().patch_namespaced_custom_object_status,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            name,
            body,
        )
    except kubernetes.client.ApiException as error:
        if error.status == 409 and resource_version is not None:
            return False  # the view was stale; the next pass sees the object as it is now
        raise
    return True


async def post_event(*, namespace: str, name: str, uid: str | None, type: str, reason: str, message: str) -> None:
    now = datetime.datetime.now(datetime.UTC)
    event = kubernetes.client.CoreV1Event(
        metadata=kubernetes.client.V1ObjectMeta(generate_name=f"{name}.", namespace=namespace),
        involved_object=kubernetes.client.V1ObjectReference(
            api_version=f"{GROUP}/{VERSION}",
            kind=KIND,
            namespace=namespace,
            name=name,
            uid=uid,
        ),
        type=type,
        reason=reason,
        message=message[:1024],
        first_timestamp=now,
        last_timestamp=now,
        count=1,
        source=kubernetes.client.V1EventSource(component="selfheal-operator"),
        reporting_component="selfheal-operator",
        reporting_instance="selfheal-operator",
    )
    await asyncio.to_thread(core().create_namespaced_event, namespace, event)
