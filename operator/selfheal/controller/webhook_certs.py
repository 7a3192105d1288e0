"""Certificates for the admission webhook's HTTPS endpoint: a private CA and a serving
certificate for the webhook's host names and IPs, written as files kopf can load.
In a cluster, prefer certificates from cert-manager (`--webhook-cert/--webhook-key/--webhook-ca`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from selfheal.core import tls


@dataclass(frozen=True)
class WebhookCertificates:
    ca_file: Path  # what the API server trusts (the webhook configuration's caBundle)
    cert_file: Path
    key_file: Path


def generate(directory: Path, *, hosts: list[str], days: int = 365) -> WebhookCertificates:
    """A fresh CA and a serving certificate for `hosts` (DNS names or IP addresses), mode 0600."""
    directory.mkdir(parents=True, exist_ok=True)
    pems = tls.ca_and_serving_certificate(ca_name="selfheal-webhook-ca", common_name=hosts[0], hosts=hosts, days=days)
    files = WebhookCertificates(directory / "ca.crt", directory / "tls.crt", directory / "tls.key")
    _write(files.ca_file, pems.ca_cert)
    _write(files.cert_file, pems.cert)
    _write(files.key_file, pems.key)
    return files


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    path.chmod(0o600)
