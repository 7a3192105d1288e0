"""Fixtures: a real payments server, a registry stub over real HTTP, and clients wired to both."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from molam import AppliedPatch, MolamClient
from tests.sdk.payments_server import PaymentsServer
from tests.sdk.registry_stub import TOKEN, RegistryStub
from tests.sdk.sealing import TRUSTED


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch) -> None:
    """The SDK reads proxies and registry settings from the environment: the tests set their own."""
    import os

    for name in list(os.environ):
        if name.lower().endswith("_proxy") or name.startswith("MOLAM_"):
            monkeypatch.delenv(name)


@pytest.fixture()
def payments() -> Iterator[PaymentsServer]:
    with PaymentsServer() as server:
        yield server


@pytest.fixture()
def registry() -> Iterator[RegistryStub]:
    with RegistryStub() as stub:
        yield stub


@pytest.fixture()
def applied() -> list[AppliedPatch]:
    return []


@pytest.fixture()
def make_client(payments, registry, applied):
    clients: list[MolamClient] = []

    def make(**options) -> MolamClient:
        settings = dict(
            api_key="pk_primary",
            secret_key=payments.behaviour.secret_key,
            base_url=payments.url,
            timeout=2.0,
            selfheal_url=registry.url,
            selfheal_token=TOKEN,
            trusted_keys=TRUSTED,
            fallback_credentials={"MOLAM_FALLBACK_API_KEY": "pk_fallback"},
            on_patch_applied=applied.append,
            report_interval=0.05,
        )
        client = MolamClient(**{**settings, **options})
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
