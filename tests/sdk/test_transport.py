"""Connections kept alive (counted on real local servers) and proxies honoured (a real local
forward proxy sees the requests), plus the proxy choice itself (tests/vectors/proxy.json)."""

from __future__ import annotations

import json
import threading

import pytest

from molam import ConfigurationError, MolamClient
from molam.transport import proxies_from_environment, proxy_for
from tests.sdk import vectors
from tests.sdk.payments_server import PaymentsServer
from tests.sdk.proxy_server import ProxyServer
from tests.sdk.tls import server_context, write_certificate

PROXY_VECTORS = json.loads((vectors.DIRECTORY / "proxy.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", PROXY_VECTORS["cases"], ids=lambda case: case["name"])
def test_proxy_vector(case):
    from urllib.parse import urlsplit

    url = urlsplit(case["url"])
    assert (
        proxy_for(url.scheme, url.hostname, url.port, proxies_from_environment(case["environment"])) == case["expect"]
    )


def test_calls_reuse_one_connection_per_host(payments, registry, make_client):
    registry.add("invalid_currency", [{"op": "set", "setting": "default_currency", "value": "XOF"}])
    client = make_client(report_interval=3600)  # reports only when flushed, on this thread
    for _ in range(5):
        client.create_payment(amount=100, currency="XOF", country="SN")
    client.create_payment(amount=100, currency="XYZ", country="SN")  # healed: a lookup, then the retry
    client.get_payment(client.create_payment(amount=1, currency="XOF", country="SN")["id"])
    assert client.flush_reports()
    assert len(payments.requests) == 9 and payments.connections == 1
    assert len(registry.lookups) == 1 and len(registry.reports) == 1 and registry.connections == 1


def test_a_connection_the_server_closed_is_replaced_not_failed(payments, make_client):
    payments.behaviour.close_connections = True  # as servers do with idle connections
    client = make_client()
    for _ in range(3):
        assert client.create_payment(amount=100, currency="XOF", country="SN")["status"] == "succeeded"
    assert payments.connections == 3


def test_concurrent_calls_each_get_a_connection_and_return_it(payments, make_client):
    client = make_client()
    failures: list[BaseException] = []

    def pay() -> None:
        try:
            for _ in range(5):
                client.create_payment(amount=100, currency="XOF", country="SN")
        except BaseException as error:  # noqa: BLE001 - reported below
            failures.append(error)

    threads = [threading.Thread(target=pay) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == [] and len(payments.requests) == 15
    assert payments.connections <= 3


def test_close_closes_pooled_connections(payments, make_client):
    client = make_client()
    client.create_payment(amount=100, currency="XOF", country="SN")
    client.close()
    client.create_payment(amount=100, currency="XOF", country="SN")  # still works, on a new connection
    assert payments.connections == 2


def test_http_proxy_forwards_http_calls_and_no_proxy_bypasses_it(payments, registry, make_client, monkeypatch):
    with ProxyServer() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        client = make_client()
        client.create_payment(amount=100, currency="XOF", country="SN")
        client.create_payment(amount=100, currency="XOF", country="SN")
        assert [(seen.method, seen.target) for seen in proxy.seen] == [
            ("POST", f"{payments.url}/v1/payments"),
            ("POST", f"{payments.url}/v1/payments"),
        ]
        monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
        make_client().create_payment(amount=100, currency="XOF", country="SN")
        assert len(proxy.seen) == 2 and len(payments.requests) == 3


def test_https_proxy_tunnels_https_calls_with_proxy_credentials(tmp_path, monkeypatch):
    cert, key = write_certificate(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client trusts the test server's certificate
    with PaymentsServer(tls=server_context(cert, key)) as payments, ProxyServer(credentials="svc:s3cret") as proxy:
        # user:password@host:port, without a scheme: curl's reading, an http:// proxy.
        monkeypatch.setenv("HTTPS_PROXY", proxy.url.replace("http://", "svc:s3cret@"))
        client = MolamClient(
            api_key="pk_primary",
            secret_key=payments.behaviour.secret_key,
            base_url=payments.url,
            enable_self_healing=False,
        )
        for _ in range(3):
            assert client.create_payment(amount=100, currency="XOF", country="SN")["status"] == "succeeded"
        # One tunnel, kept alive: the proxy saw the host once and never the requests inside.
        assert proxy.seen and [(seen.method, seen.target, seen.authorized) for seen in proxy.seen] == [
            ("CONNECT", payments.url.removeprefix("https://"), True)
        ]
        assert payments.connections == 1 and len(payments.requests) == 3
        client.close()


def test_a_proxy_refusing_the_credentials_is_a_connection_error(tmp_path, monkeypatch):
    from molam import MolamConnectionError

    with ProxyServer(credentials="svc:s3cret") as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)  # no credentials: 407
        client = MolamClient(api_key="pk", secret_key="sk", base_url="https://api.molam.com", enable_self_healing=False)
        with pytest.raises(MolamConnectionError, match="407"):
            client.get_payment("pay_1")
        assert [(seen.method, seen.target, seen.authorized) for seen in proxy.seen] == [
            ("CONNECT", "api.molam.com:443", False)
        ]


@pytest.mark.parametrize(
    "value, reason",
    [
        ("socks5://127.0.0.1:1080", "'socks5://127.0.0.1:1080': only http:// proxies are supported"),
        ("http://127.0.0.1:port", "'http://127.0.0.1:port': the port is not a number"),
    ],
)
def test_a_proxy_variable_the_sdk_cannot_use_is_a_configuration_error(monkeypatch, value, reason):
    monkeypatch.setenv("HTTPS_PROXY", value)
    with pytest.raises(ConfigurationError) as raised:
        MolamClient(api_key="pk", secret_key="sk", enable_self_healing=False)
    assert (raised.value.option, raised.value.reason) == ("HTTPS_PROXY", reason)
