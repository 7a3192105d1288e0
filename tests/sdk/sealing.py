"""Signing envelopes in tests, as the registry does (`selfheal.core.signing`): Ed25519 over the
canonical JSON bytes of the payload, carried base64 beside the signature."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def canonical(payload: object) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True)
class TestKey:
    private: Ed25519PrivateKey

    @classmethod
    def from_label(cls, label: str) -> TestKey:
        # Deterministic, so the vector files regenerate byte for byte (Ed25519 signing is deterministic).
        return cls(Ed25519PrivateKey.from_private_bytes(hashlib.sha256(label.encode()).digest()))

    @property
    def seed_hex(self) -> str:
        return self.private.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        ).hex()

    @property
    def public_pem(self) -> str:
        return (
            self.private.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    @property
    def key_id(self) -> str:
        raw = self.private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return hashlib.sha256(raw).hexdigest()[:16]

    def signature(self, data: bytes) -> dict:
        return {"alg": "Ed25519", "keyId": self.key_id, "signature": base64.b64encode(self.private.sign(data)).decode()}


def seal(payload: dict, *keys: TestKey) -> dict:
    data = canonical(payload)
    return {
        "format": "selfheal.patch.v1",
        "payload": base64.b64encode(data).decode(),
        "signatures": [key.signature(data) for key in keys],
    }


CURRENT = TestKey.from_label("molam test vectors: current key")
NEXT = TestKey.from_label("molam test vectors: next key")
UNKNOWN = TestKey.from_label("molam test vectors: a key nobody pinned")
TRUSTED = {CURRENT.key_id: CURRENT.public_pem, NEXT.key_id: NEXT.public_pem}
