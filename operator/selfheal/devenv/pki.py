"""Throw-away credentials for the local API server, generated in-process.

Mirrors envtest: a private CA signs the serving certificate (clients trust the
CA, not the leaf, which strict X.509 verifiers require), an RSA key signs
service-account tokens, and a static bearer token authenticates the admin.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa

from selfheal.core import tls

ADMIN_USER = "selfheal-admin"
ADMIN_GROUP = "system:masters"  # bypasses RBAC authorization, like a cluster admin


@dataclass(frozen=True)
class ApiServerCredentials:
    ca_cert: Path
    serving_cert: Path
    serving_key: Path
    service_account_key: Path  # private key: used to sign and (derived) to verify tokens
    token_file: Path
    admin_token: str


def generate(directory: Path) -> ApiServerCredentials:
    """Write fresh credentials into `directory` (mode 0700) and return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    pems = tls.ca_and_serving_certificate(
        ca_name="selfheal-dev-ca", common_name="kube-apiserver", hosts=["localhost", "127.0.0.1"]
    )

    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = secrets.token_urlsafe(32)

    creds = ApiServerCredentials(
        ca_cert=directory / "ca.crt",
        serving_cert=directory / "apiserver.crt",
        serving_key=directory / "apiserver.key",
        service_account_key=directory / "service-account.key",
        token_file=directory / "tokens.csv",
        admin_token=token,
    )
    _write(creds.ca_cert, pems.ca_cert)
    _write(creds.serving_cert, pems.cert)
    _write(creds.serving_key, pems.key)
    _write(creds.service_account_key, tls.private_pem(sa_key))
    # static token file format: token,user,uid,"group1,group2"
    _write(creds.token_file, f'{token},{ADMIN_USER},{ADMIN_USER},"{ADMIN_GROUP}"\n'.encode())
    return creds


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    path.chmod(0o600)
