"""Every overlay installs for real: each namespaced object carries its namespace (the API server's
discovery says which kinds are namespaced), and `kubectl apply -k` creates every object where the
overlay says. The test world has no kube-controller-manager, so nothing here relies on namespace
deletion or garbage collection: the objects the apply created are deleted one by one, and objects
that existed before (the namespace, the session's CRD) are left as they were."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from tests.manifests.conftest import MANIFESTS, NAMESPACE, OVERLAYS, build, kubectl


@dataclass(frozen=True)
class Kind:
    resource: str  # the plural name kubectl takes, with its group (`deployments.apps`)
    namespaced: bool


def discovery(devenv) -> dict[tuple[str, str], Kind]:
    """(apiVersion, kind) -> what the API server serves, read from its discovery documents."""
    kinds = {}
    output = kubectl(devenv, "api-resources", "--no-headers").stdout
    for line in output.splitlines():
        # NAME [SHORTNAMES] APIVERSION NAMESPACED KIND: short names may be missing, so count from the end.
        name, *_, api_version, namespaced, kind = line.split()
        group = api_version.rpartition("/")[0]
        kinds[api_version, kind] = Kind(f"{name}.{group}" if group else name, namespaced == "true")
    return kinds


def reference(kinds: dict[tuple[str, str], Kind], document: dict) -> str:
    return f"{kinds[document['apiVersion'], document['kind']].resource}/{document['metadata']['name']}"


def identity(document: dict) -> tuple[str, str, str | None, str]:
    """Group, kind, namespace, name: what names an object whatever version it is read at."""
    metadata = document["metadata"]
    return document["apiVersion"].rpartition("/")[0], document["kind"], metadata.get("namespace"), metadata["name"]


def existing(devenv, kinds, documents: list[dict]) -> set[tuple[str, str, str | None, str]]:
    """The identities among `documents` that exist now, each looked up in its own namespace."""
    found = set()
    for namespace in {d["metadata"].get("namespace") for d in documents}:
        mine = [reference(kinds, d) for d in documents if d["metadata"].get("namespace") == namespace]
        scope = ["-n", namespace] if namespace else []
        listed = kubectl(devenv, "get", *scope, *mine, "--ignore-not-found", "-o", "json").stdout
        found |= {identity(item) for item in (json.loads(listed)["items"] if listed.strip() else [])}
    return found


def delete(devenv, kinds, documents: list[dict]) -> None:
    """Deletes each object by name, admission webhooks first (a fail-closed one would refuse every
    SelfHealPatch write of later tests), and waits until each is gone."""
    webhooks = [d for d in documents if d["kind"] == "ValidatingWebhookConfiguration"]
    rest = [d for d in documents if d not in webhooks]
    for batch in (webhooks, rest):
        for namespace in {d["metadata"].get("namespace") for d in batch}:
            mine = [reference(kinds, d) for d in batch if d["metadata"].get("namespace") == namespace]
            scope = ["-n", namespace] if namespace else []
            kubectl(devenv, "delete", *scope, *mine, "--ignore-not-found", "--wait=true", "--timeout=60s")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_namespaced_object_has_the_namespace(devenv, third_party_crds, overlay):
    kinds = discovery(devenv)
    objects = build(devenv, overlay)
    unknown = {(o["apiVersion"], o["kind"]) for o in objects} - kinds.keys()
    assert not unknown, f"kinds the API server does not serve: {unknown}"
    for document in objects:
        name = f"{document['kind']}/{document['metadata']['name']}"
        if kinds[document["apiVersion"], document["kind"]].namespaced:
            assert document["metadata"].get("namespace") == NAMESPACE, f"{overlay}: {name} has no namespace"
        else:
            assert "namespace" not in document["metadata"], f"{overlay}: cluster-scoped {name} has a namespace"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_applies_for_real_into_its_namespace(devenv, third_party_crds, selfheal_namespace, overlay):
    kinds = discovery(devenv)
    objects = build(devenv, overlay)
    # The namespace exists already (a namespace cannot be deleted here), so does the session's CRD.
    before = existing(devenv, kinds, objects)
    assert ("", "Namespace", None, NAMESPACE) in before
    created = [o for o in objects if identity(o) not in before]
    try:
        # Applied from a shell whose context's namespace is `default`: an object without a namespace would land there.
        result = kubectl(devenv, "apply", "-k", str(MANIFESTS / "overlays" / overlay))
        assert "PodSecurity" not in result.stderr, result.stderr
        assert existing(devenv, kinds, objects) == {identity(o) for o in objects}
        namespaced = [o for o in objects if kinds[o["apiVersion"], o["kind"]].namespaced]
        strays = kubectl(
            devenv,
            "get",
            "-n",
            "default",
            "-o",
            "name",
            "--ignore-not-found",
            *(reference(kinds, o) for o in namespaced),
        ).stdout
        assert not strays, f"landed in the context's namespace:\n{strays}"
        # The webhook configuration points at the Service and the Certificate (its CA bundle) the
        # overlay created beside it.
        for webhook in (o for o in objects if o["kind"] == "ValidatingWebhookConfiguration"):
            namespace, name = webhook["metadata"]["annotations"]["cert-manager.io/inject-ca-from"].split("/")
            kubectl(devenv, "get", "-n", namespace, f"certificates.cert-manager.io/{name}")
            for entry in webhook["webhooks"]:
                service = entry["clientConfig"]["service"]
                kubectl(devenv, "get", "-n", service["namespace"], f"service/{service['name']}")
    finally:
        delete(devenv, kinds, created)
    assert not existing(devenv, kinds, created)
