"""Signed patch envelopes: Ed25519 over the exact payload bytes (pure logic, no I/O).

The envelope carries the payload base64-encoded beside its signatures, so an SDK verifies
the bytes it received and only then parses them: nothing is re-serialised before verifying.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from selfheal.core.patchlang import operations

ENVELOPE_FORMAT = "selfheal.patch.v1"


def canonical_json(document: Any) -> bytes:
    """The payload bytes: the operation documents' canonical serialisation, as UTF-8."""
    return operations.canonical_json(document).encode("utf-8")


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class SigningKey:
    private_key: Ed25519PrivateKey

    @functools.cached_property
    def key_id(self) -> str:
        # Once per key: deriving the public key costs as much as a signature.
        return key_id(self.private_key.public_key())

    @classmethod
    def from_pem(cls, pem: bytes) -> SigningKey:
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("signing key: not an Ed25519 private key")
        return cls(key)

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    def secret_bytes(self) -> bytes:
        """The raw private key: input to keys derived from it (receipts), never sent anywhere."""
        return self.private_key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )

    def private_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def seal(payload: dict[str, Any], *, key: SigningKey) -> dict[str, Any]:
    payload_bytes = canonical_json(payload)
    return {
        "format": ENVELOPE_FORMAT,
        "payload": base64.b64encode(payload_bytes).decode("ascii"),
        "signatures": [
            {
                "alg": "Ed25519",
                "keyId": key.key_id,
                "signature": base64.b64encode(key.private_key.sign(payload_bytes)).decode("ascii"),
            }
        ],
    }


class EnvelopeError(ValueError):
    pass


def open_envelope(envelope: dict[str, Any], *, trusted: dict[str, Ed25519PublicKey]) -> dict[str, Any]:
    """The payload of `envelope` if a trusted key signed its exact bytes; EnvelopeError otherwise."""
    try:
        payload_bytes = base64.b64decode(envelope["payload"], validate=True)
        signatures = envelope["signatures"]
    except (KeyError, TypeError, ValueError) as error:
        raise EnvelopeError(f"malformed envelope: {error}") from None
    for signature in signatures if isinstance(signatures, list) else []:
        public_key = trusted.get(str(signature.get("keyId"))) if isinstance(signature, dict) else None
        if public_key is None:
            continue
        try:
            public_key.verify(base64.b64decode(signature.get("signature", ""), validate=True), payload_bytes)
        except (InvalidSignature, ValueError):
            continue
        payload: dict[str, Any] = json.loads(payload_bytes)
        return payload
    raise EnvelopeError("no signature from a trusted key")
