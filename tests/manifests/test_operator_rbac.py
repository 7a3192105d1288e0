"""RBAC proven, not assumed: the operator and the registry API run with their ServiceAccounts'
tokens (issued by the API server through the TokenRequest API, with the manifests' RBAC) and
their own PostgreSQL roles, through a whole cycle; `kubectl auth can-i` shows what they cannot do.
"""

from __future__ import annotations

import urllib.request
import uuid
from pathlib import Path

import kubernetes
import pytest
import yaml

from selfheal.core.resource import GROUP, PLURAL, VERSION
from tests.api_server import selfheal, start_api_server
from tests.db_roles import restricted_database
from tests.manifests.conftest import NAMESPACE, build, kubectl
from tests.support import OperatorProcess, Patches, new_namespace, wait_until

ROOT = Path(__file__).resolve().parents[2]
RBAC_KINDS = {"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
OPERATOR, API = "selfheal-operator", "devportal-api"
DENIED_IN_LOGS = ("forbidden", "permission denied", "insufficientprivilege", "403")


@pytest.fixture(scope="module")
def rbac(devenv) -> None:
    """The ServiceAccounts and roles of the local overlay, applied for real."""
    objects = [o for o in build(devenv, "local") if o["kind"] in RBAC_KINDS]
    kubectl(devenv, "apply", "-f", "-", input=yaml.safe_dump_all(objects))


def service_account_kubeconfig(devenv, name: str, path: Path) -> Path:
    """A kubeconfig holding a token the API server issued for the ServiceAccount (TokenRequest)."""
    token = kubectl(devenv, "create", "token", name, "-n", NAMESPACE, "--duration=2h").stdout.strip()
    admin = yaml.safe_load(devenv.kubeconfig.read_text())
    context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])["context"]
    cluster = next(c for c in admin["clusters"] if c["name"] == context["cluster"])
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [cluster],
                "users": [{"name": name, "user": {"token": token}}],
                "contexts": [{"name": name, "context": {"cluster": cluster["name"], "user": name}}],
                "current-context": name,
            }
        )
    )
    return path


@pytest.fixture(scope="module")
def kubeconfigs(devenv, rbac, tmp_path_factory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("service-accounts")
    return {name: service_account_kubeconfig(devenv, name, directory / f"{name}.yaml") for name in (OPERATOR, API)}


def can_i(devenv, kubeconfig: Path, *args: str) -> bool:
    result = kubectl(devenv, "auth", "can-i", *args, kubeconfig=kubeconfig, check=False)
    assert result.stdout.strip() in ("yes", "no"), result.stderr
    return result.stdout.strip() == "yes"


def test_tokens_are_the_service_accounts(devenv, kubeconfigs):
    for name, kubeconfig in kubeconfigs.items():
        who = kubectl(
            devenv, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}", kubeconfig=kubeconfig
        ).stdout
        assert who == f"system:serviceaccount:{NAMESPACE}:{name}"


OPERATOR_MAY = [
    ("list", "selfhealpatches.selfheal.molam.io", "--all-namespaces"),
    ("watch", "selfhealpatches.selfheal.molam.io", "--all-namespaces"),
    ("patch", "selfhealpatches.selfheal.molam.io", "-n", "team-a"),
    ("patch", "selfhealpatches.selfheal.molam.io", "--subresource=status", "-n", "team-a"),
    ("create", "events", "-n", "team-a"),
    ("list", "customresourcedefinitions.apiextensions.k8s.io"),
    ("watch", "namespaces"),
    # Leader election: its own Lease, in its own namespace.
    ("create", "leases.coordination.k8s.io", "-n", NAMESPACE),
    ("get", "leases.coordination.k8s.io/selfheal-operator", "-n", NAMESPACE),
    ("update", "leases.coordination.k8s.io/selfheal-operator", "-n", NAMESPACE),
]
OPERATOR_MAY_NOT = [
    ("get", "secrets", "--all-namespaces"),
    ("list", "secrets", "-n", NAMESPACE),
    ("delete", "customresourcedefinitions.apiextensions.k8s.io"),
    ("update", "customresourcedefinitions.apiextensions.k8s.io"),
    ("create", "selfhealpatches.selfheal.molam.io", "-n", "team-a"),
    ("delete", "selfhealpatches.selfheal.molam.io", "-n", "team-a"),
    ("update", "selfhealpatches.selfheal.molam.io", "-n", "team-a"),
    ("list", "configmaps", "-n", NAMESPACE),
    ("create", "pods", "-n", NAMESPACE),
    ("patch", "deployments.apps", "-n", NAMESPACE),
    ("create", "validatingwebhookconfigurations.admissionregistration.k8s.io"),
    ("create", "clusterrolebindings.rbac.authorization.k8s.io"),
    ("patch", "events", "-n", "team-a"),
    ("impersonate", "serviceaccounts", "-n", NAMESPACE),
    ("patch", "namespaces"),
    ("update", "leases.coordination.k8s.io/kube-controller-manager", "-n", "kube-system"),
    ("update", "leases.coordination.k8s.io/other-lease", "-n", NAMESPACE),
    ("create", "leases.coordination.k8s.io", "-n", "team-a"),
    ("delete", "leases.coordination.k8s.io/selfheal-operator", "-n", NAMESPACE),
]
API_MAY = [
    ("create", "selfhealpatches.selfheal.molam.io", "-n", NAMESPACE),
    ("patch", "selfhealpatches.selfheal.molam.io", "-n", NAMESPACE),  # the kill switch's annotation
]
API_MAY_NOT = [
    ("create", "selfhealpatches.selfheal.molam.io", "-n", "team-a"),
    ("patch", "selfhealpatches.selfheal.molam.io", "-n", "team-a"),
    ("patch", "selfhealpatches.selfheal.molam.io", "--all-namespaces"),
    ("update", "selfhealpatches.selfheal.molam.io", "-n", NAMESPACE),
    ("delete", "selfhealpatches.selfheal.molam.io", "-n", NAMESPACE),
    ("patch", "selfhealpatches.selfheal.molam.io", "--subresource=status", "-n", NAMESPACE),
    ("get", "secrets", "-n", NAMESPACE),
    ("list", "secrets", "--all-namespaces"),
    ("delete", "customresourcedefinitions.apiextensions.k8s.io"),
    ("create", "events", "-n", NAMESPACE),
]


@pytest.mark.parametrize(
    "who, check, allowed",
    [
        *[(OPERATOR, check, True) for check in OPERATOR_MAY],
        *[(OPERATOR, check, False) for check in OPERATOR_MAY_NOT],
        *[(API, check, True) for check in API_MAY],
        *[(API, check, False) for check in API_MAY_NOT],
    ],
    ids=lambda value: " ".join(value) if isinstance(value, tuple) else str(value),
)
def test_can_i_matrix(devenv, kubeconfigs, who, check, allowed):
    assert can_i(devenv, kubeconfigs[who], *check) is allowed


def forbidden(call) -> bool:
    try:
        call()
    except kubernetes.client.ApiException as error:
        assert error.status == 403, error
        return True
    return False


def test_api_writes_patches_in_its_namespace_only(devenv, kube_client, custom_api, kubeconfigs):
    """Real requests with the API's token: create and annotate (the kill switch) where `POST
    /api/dev/patches` creates patches; refused in any other namespace."""
    as_api = kubernetes.client.CustomObjectsApi(
        kubernetes.config.new_client_from_config(config_file=str(kubeconfigs[API]))
    )
    other = new_namespace(kube_client, "rbac")
    name = f"rbac-{uuid.uuid4().hex[:8]}"
    disable = {"metadata": {"annotations": {f"{GROUP}/disable": "incident"}}}
    try:
        Patches(as_api, NAMESPACE).create(name)
        as_api.patch_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name, disable)
        assert Patches(custom_api, NAMESPACE).get(name)["metadata"]["annotations"][f"{GROUP}/disable"] == "incident"

        Patches(custom_api, other).create(name)  # a team's patch, applied by its GitOps
        assert forbidden(lambda: Patches(as_api, other).create(f"{name}-2"))
        assert forbidden(lambda: as_api.patch_namespaced_custom_object(GROUP, VERSION, other, PLURAL, name, disable))
        assert f"{GROUP}/disable" not in (Patches(custom_api, other).get(name)["metadata"].get("annotations") or {})
    finally:
        for namespace in (NAMESPACE, other):
            patches = Patches(custom_api, namespace)
            if patches.exists(name):
                patches.delete(name)
            # A running operator holds a finalizer until it has retired the row.
            wait_until(lambda: not patches.exists(name), timeout=60, what=f"{namespace}/{name} deleted")


@pytest.fixture(scope="module")
def alone(operator):
    """The session's clusterwide operator would handle this namespace too (same finalizer and
    annotations): it pauses while the restricted one runs."""
    operator.stop()
    yield
    operator.start()


@pytest.fixture(scope="module")
def database(admin_database_url):
    return restricted_database(admin_database_url)


@pytest.fixture(scope="module")
def restricted_operator(devenv, alone, kubeconfigs, database, tmp_path_factory):
    process = OperatorProcess(
        kubeconfig=kubeconfigs[OPERATOR],
        database_url=database.operator_url,
        log_file=tmp_path_factory.mktemp("rbac-operator") / "operator.log",
        extra_args=("-n", NAMESPACE, "--no-migrate"),
        port_options=("--metrics-port",),
    )
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def restricted_api(devenv, kubeconfigs, database, restricted_operator, tmp_path_factory):
    server = start_api_server(
        database_url=database.api_url,
        kubeconfig=kubeconfigs[API],
        patch_namespace=NAMESPACE,
        directory=tmp_path_factory.mktemp("rbac-api"),
        rate=1000,
        extra_args=("--no-migrate",),
    )
    yield server
    server.stop()


def events(kube_client, name: str) -> list[tuple[str, str]]:
    items = kubernetes.client.CoreV1Api(kube_client).list_namespaced_event(NAMESPACE).items
    return [(e.type, e.reason) for e in items if e.involved_object.name == name]


def test_full_cycle_under_service_accounts_and_database_roles(
    devenv, kube_client, custom_api, database, restricted_operator, restricted_api
):
    patches = Patches(custom_api, NAMESPACE)
    admin_token = selfheal(
        "token", "create", "--developer", "oncall", "--role", "dev_admin", database_url=database.owner_url
    ).stdout.strip()
    developer_token = selfheal(
        "token", "create", "--developer", "sdk-1", database_url=database.owner_url
    ).stdout.strip()

    # Sync: a patch applied by GitOps, one created through the API (its ServiceAccount creates it).
    kubectl(devenv, "apply", "-n", NAMESPACE, "-f", str(ROOT / "samples/python-401-fallback-key.yaml"))
    status, _, created = restricted_api.request(
        "POST",
        "/api/dev/patches",
        token=admin_token,
        body={
            "sdk_language": "node",
            "error_signature": "ECONNREFUSED",
            "patch_code": 'this.baseUrl = "https://api-backup.molam.com"; console.warn("⚡ Fallback to backup API");',
            "description": "Fallback vers API de backup",
            "severity": "high",
            "rollback_code": 'this.baseUrl = "https://api.molam.com";',
        },
    )
    assert status == 201, created
    for name in ("python-401-fallback-key", created["name"]):
        patches.wait_condition(name, "Ready", status="True", timeout=60)
        wait_until(lambda: ("Normal", "Synced") in events(kube_client, name), what=f"{name} Synced event")
    fallback = patches.get("python-401-fallback-key")
    patch_id = fallback["status"]["registryId"]
    assert f"{GROUP}/registry" in fallback["metadata"]["finalizers"]

    # Outcomes through the API (COPY as selfheal_api), judged by the guard (as selfheal_operator).
    _, _, served = wait_until(
        lambda: (
            (
                r := restricted_api.request(
                    "POST",
                    "/api/dev/self-heal",
                    token=developer_token,
                    body={"sdk": "python", "error": "401 Unauthorized", "status": 401},
                )
            )[0]
            == 200
            and r
        ),
        what="the patch served",
    )
    reports = [
        {
            "patch_id": patch_id,
            "sdk": "python",
            "error": "401 Unauthorized",
            "success": False,
            "rollback_triggered": True,
            "receipt": served["receipt"],
        }
        for _ in range(60)
    ]
    status, _, answer = restricted_api.request(
        "POST", "/api/dev/self-heal/reports", token=developer_token, body={"reports": reports}
    )
    assert status in (200, 202), answer
    patches.wait_condition("python-401-fallback-key", "Active", status="False", reason="AutoDeactivated", timeout=60)
    wait_until(
        lambda: ("Warning", "AutoDeactivated") in events(kube_client, "python-401-fallback-key"),
        what="AutoDeactivated event",
    )

    # Reactivation by annotation (a person), carried out by the operator.
    custom_api.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        NAMESPACE,
        PLURAL,
        "python-401-fallback-key",
        {"metadata": {"annotations": {f"{GROUP}/reactivate": "after-fix-1"}}},
    )
    patches.wait_condition("python-401-fallback-key", "Active", status="True", timeout=60)

    # The kill switch through the API: registry row off (selfheal_api), annotation (its ServiceAccount).
    api_patch_id = patches.get(created["name"])["status"]["registryId"]
    status, _, answer = restricted_api.request("DELETE", f"/api/dev/patches/{api_patch_id}", token=admin_token)
    assert status == 200 and answer["resource_annotated"] is True, answer
    patches.wait_condition(created["name"], "Active", status="False", reason="ManualKillSwitch", timeout=60)

    # Delete: the operator releases its finalizer once the registry row is retired.
    patches.delete(created["name"])
    wait_until(lambda: not patches.exists(created["name"]), timeout=60, what="finalizer released")

    with urllib.request.urlopen(
        f"http://127.0.0.1:{restricted_operator.ports['--metrics-port']}/metrics", timeout=5
    ) as reply:
        metrics = reply.read().decode()
    assert "selfheal_registry_up 1.0" in metrics
    assert 'selfheal_guard_deactivations_total{reason="AutoDeactivated",rule="HighRollbackRate"} 1.0' in metrics
    for log in (restricted_operator.log_tail(100_000), restricted_api.log()):
        denied = [line for line in log.splitlines() if any(word in line.lower() for word in DENIED_IN_LOGS)]
        assert not denied, "\n".join(denied)
