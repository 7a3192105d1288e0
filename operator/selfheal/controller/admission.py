"""The validating admission webhook: invalid patch code is refused at `kubectl apply`.

Served by the operator through kopf's admission support, on HTTPS. The webhook configuration
is ours, not kopf's managed one: kopf's uses a 30 s timeout and removes itself when the
operator stops, whereas a GitOps sync must fail loudly. Ours is scoped to SelfHealPatch alone
(CREATE and UPDATE), `failurePolicy: Fail`, a short timeout, and it stays in place: while the
operator is down, SelfHealPatch writes are refused and nothing else is affected.

The webhook runs the same validation as the operator, which still re-validates every object
(some predate the webhook).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import tempfile
from pathlib import Path
from typing import Any

import kopf
import kubernetes

from selfheal.controller import webhook_certs
from selfheal.controller.config import WebhookConfig
from selfheal.core.models import SpecError
from selfheal.core.resource import GROUP, PLURAL, VERSION
from selfheal.core.validation import validate_patch
from selfheal.services import kube

HANDLER_ID = "patch-code"
WEBHOOK_NAME = f"{HANDLER_ID}.{GROUP}"

log = logging.getLogger("selfheal.admission")


def check_patch(spec: kopf.Spec, old: kopf.BodyEssence | None, operation: str, memo: Any, **_: Any) -> None:
    """Refuse a spec the operator would mark invalid, with the same messages."""
    # Metadata-only updates (finalizers, annotations) must pass, even on objects that predate the
    # webhook and are invalid: otherwise they could never be released or deleted.
    if operation == "UPDATE" and old is not None and dict(old.get("spec") or {}) == dict(spec):
        return
    try:
        validate_patch(dict(spec), allowed_hosts=memo.config.allowed_hosts)
    except SpecError as error:
        raise kopf.AdmissionError("invalid SelfHealPatch: " + "; ".join(error.problems), code=422) from None


def webhook_configuration(
    *, name: str, url: str, ca_bundle: bytes, namespaces: list[str] | tuple[str, ...] = (), timeout_seconds: int
) -> dict:
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


def enable(*, webhook: WebhookConfig, namespaces: tuple[str, ...]) -> None:
    """Register the admission handler and serve it; call before kopf.run."""
    certificates = _certificates(webhook)

    @kopf.on.startup()
    async def serve_admission(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.admission.server = kopf.WebhookServer(
            addr=webhook.listen_address,
            port=webhook.port,
            host=webhook.host,
            certfile=str(certificates.cert_file),
            pkeyfile=str(certificates.key_file),
            cafile=str(certificates.ca_file),
        )
        settings.admission.managed = None  # ours: see the module docstring
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
                "validating webhook %s points at %s",
                webhook.configuration_name,
                body["webhooks"][0]["clientConfig"]["url"],
            )

    # kopf's handler protocols spell out every keyword; ours take what they use and **_.
    kopf.on.validate(GROUP, VERSION, PLURAL, id=HANDLER_ID, operations=["CREATE", "UPDATE"])(check_patch)  # type: ignore[arg-type]


def _certificates(webhook: WebhookConfig) -> webhook_certs.WebhookCertificates:
    if webhook.cert_file and webhook.key_file:
        return webhook_certs.WebhookCertificates(
            ca_file=Path(webhook.ca_file or webhook.cert_file),
            cert_file=Path(webhook.cert_file),
            key_file=Path(webhook.key_file),
        )
    directory = Path(tempfile.mkdtemp(prefix="selfheal-webhook-"))
    return webhook_certs.generate(directory, hosts=[webhook.host])


def _apply(body: dict) -> None:
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
