"""The validating admission webhook: invalid patch code is refused at `kubectl apply`.

Served on HTTPS by every operator replica, leader or standby (aiohttp, outside kopf), so that a
rollout or the loss of the leader never blocks SelfHealPatch writes. The webhook configuration
is ours, not kopf's managed one: ours is scoped to SelfHealPatch alone (CREATE and UPDATE),
`failurePolicy: Fail`, a short timeout, and it stays in place when the operator stops: while no
replica serves it, SelfHealPatch writes are refused and nothing else is affected.

The webhook runs the same validation as the operator, which still re-validates every object
(some predate the webhook).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import ssl
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import kubernetes
from aiohttp import web

from selfheal.controller import webhook_certs
from selfheal.controller.config import WebhookConfig
from selfheal.core.models import SpecError
from selfheal.core.patchlang import AllowedHosts
from selfheal.core.resource import GROUP, PLURAL, VERSION
from selfheal.core.validation import validate_patch
from selfheal.services import kube

HANDLER_ID = "patch-code"
WEBHOOK_NAME = f"{HANDLER_ID}.{GROUP}"
MAX_REVIEW_BYTES = 3 * 1024 * 1024  # the API server's own limit on an object is 3 MiB

log = logging.getLogger("selfheal.admission")


def refusal(
    spec: Mapping[str, Any], old_spec: Mapping[str, Any] | None, *, operation: str, allowed_hosts: AllowedHosts
) -> str | None:
    """Why a spec is refused (the operator's own messages), or None when it is allowed."""
    # Metadata-only updates (finalizers, annotations) must pass, even on objects that predate the
    # webhook and are invalid: otherwise they could never be released or deleted.
    if operation == "UPDATE" and old_spec is not None and dict(old_spec) == dict(spec):
        return None
    try:
        validate_patch(dict(spec), allowed_hosts=allowed_hosts)
    except SpecError as error:
        return "invalid SelfHealPatch: " + "; ".join(error.problems)
    return None


def review_response(review: Mapping[str, Any], *, allowed_hosts: AllowedHosts) -> dict[str, Any]:
    """The AdmissionReview (admission.k8s.io/v1) answer to one request."""
    request = review.get("request") or {}
    new = request.get("object") or {}
    old = request.get("oldObject") or None
    reason = refusal(
        new.get("spec") or {},
        (old or {}).get("spec") if old else None,
        operation=request.get("operation", ""),
        allowed_hosts=allowed_hosts,
    )
    response: dict[str, Any] = {"uid": request.get("uid", ""), "allowed": reason is None}
    if reason is not None:
        response["status"] = {"code": 422, "reason": "Invalid", "message": reason}
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}


def webhook_configuration(
    *, name: str, url: str, ca_bundle: bytes, namespaces: list[str] | tuple[str, ...] = (), timeout_seconds: int
) -> dict[str, Any]:
    """The ValidatingWebhookConfiguration: SelfHealPatch only, fail closed, short timeout."""
    webhook: dict[str, Any] = {
        "name": WEBHOOK_NAME,
        "clientConfig": {"url": url, "caBundle": base64.b64encode(ca_bundle).decode("ascii")},
        "rules": [
            {
                "apiGroups": [GROUP],
                "apiVersions": [VERSION],
                "resources": [PLURAL],
                "operations": ["CREATE", "UPDATE"],
                "scope": "Namespaced",
            }
        ],
        "failurePolicy": "Fail",
        "matchPolicy": "Equivalent",
        "sideEffects": "None",
        "timeoutSeconds": timeout_seconds,
        "admissionReviewVersions": ["v1"],
    }
    if namespaces:
        # An operator that watches some namespaces guards only those.
        webhook["namespaceSelector"] = {
            "matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": sorted(namespaces)}]
        }
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "selfheal-operator"}},
        "webhooks": [webhook],
    }


async def serve(*, webhook: WebhookConfig, allowed_hosts: AllowedHosts, namespaces: tuple[str, ...]) -> web.AppRunner:
    """Start serving the webhook on HTTPS (and keep its configuration pointed here, when asked)."""
    certificates = _certificates(webhook)

    async def review(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"error": "an AdmissionReview (JSON) is expected"}, status=400)
        response = web.json_response(review_response(body, allowed_hosts=allowed_hosts))
        # One request per connection: a kept-alive connection to a replica that is shutting down
        # would fail the API server's next request on it; a new one goes to a replica that serves.
        response.force_close()
        return response

    app = web.Application(client_max_size=MAX_REVIEW_BYTES)
    app.router.add_post(f"/{HANDLER_ID}", review)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(certificates.cert_file), str(certificates.key_file))
    await web.TCPSite(runner, host=webhook.listen_address, port=webhook.port, ssl_context=context).start()
    log.info("admission webhook serving on https://%s:%d/%s", webhook.listen_address, webhook.port, HANDLER_ID)
    if webhook.configuration_name:
        body = webhook_configuration(
            name=webhook.configuration_name,
            url=f"https://{webhook.host}:{webhook.port}/{HANDLER_ID}",
            ca_bundle=certificates.ca_file.read_bytes(),
            namespaces=namespaces,
            timeout_seconds=webhook.timeout_seconds,
        )
        await asyncio.to_thread(_apply, body)
        log.info(
            "validating webhook %s points at %s", webhook.configuration_name, body["webhooks"][0]["clientConfig"]["url"]
        )
    return runner


def _certificates(webhook: WebhookConfig) -> webhook_certs.WebhookCertificates:
    if webhook.cert_file and webhook.key_file:
        return webhook_certs.WebhookCertificates(
            ca_file=Path(webhook.ca_file or webhook.cert_file),
            cert_file=Path(webhook.cert_file),
            key_file=Path(webhook.key_file),
        )
    directory = Path(tempfile.mkdtemp(prefix="selfheal-webhook-"))
    return webhook_certs.generate(directory, hosts=[webhook.host])


def _apply(body: dict[str, Any]) -> None:
    api = kube.admission_registration()
    name = body["metadata"]["name"]
    try:
        current = api.read_validating_webhook_configuration(name)
    except kubernetes.client.ApiException as error:
        if error.status != 404:
            raise
        api.create_validating_webhook_configuration(body)  # type: ignore[arg-type]  # the client takes plain dicts
        return
    body["metadata"]["resourceVersion"] = current.metadata.resource_version if current.metadata else None
    api.replace_validating_webhook_configuration(name, body)  # type: ignore[arg-type]
