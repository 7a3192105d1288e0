"""`POST /api/dev/patches`: the runbook's JSON body becomes a SelfHealPatch resource.

The resource stays the source of truth: the API only creates it; the API server (schema, CEL,
webhook) and the operator validate and sync it like any GitOps change.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from typing import Any

import kubernetes

from selfheal.core.models import PatchSpec
from selfheal.core.resource import GROUP, KIND, PLURAL, VERSION

_NAME_UNSAFE = re.compile(r"[^a-z0-9]+")


def resource_name(spec: PatchSpec) -> str:
    """A stable DNS-1123 name from language and signature: the same body twice is a conflict, not a twin."""
    slug = _NAME_UNSAFE.sub("-", spec.error_signature.lower()).strip("-")[:40] or "patch"
    digest = hashlib.sha256(f"{spec.sdk_language}\0{spec.error_signature}".encode()).hexdigest()[:8]
    return f"{spec.sdk_language}-{slug}-{digest}"


def resource_for(spec: PatchSpec, *, created_by: str) -> dict:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {"name": resource_name(spec), "annotations": {f"{GROUP}/created-by": created_by}},
        "spec": spec.model_dump(by_alias=True, exclude_none=True),
    }


async def create_resource(api: kubernetes.client.CustomObjectsApi, *, namespace: str, body: dict) -> Any:
    return await asyncio.to_thread(api.create_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, body)
