"""Signed patch envelopes: verify the exact bytes first, parse them only then.

    {"format": "selfheal.patch.v1",
     "payload": "<base64 of the payload's JSON bytes>",
     "signatures": [{"alg": "Ed25519", "keyId": "<16 hex>", "signature": "<base64>"}]}

The payload is base64 so nothing is re-serialised before verifying: the signature covers the
bytes received, then they are read by one grammar both SDKs share (molam.payload). A payload is
accepted only if a pinned key signed it, it is for this SDK's language, its times hold (issued
at most MAX_CLOCK_SKEW ahead of this clock, a lifetime of at most MAX_LIFETIME, not expired),
and neither its version nor its sequence number is lower than one already accepted for the same
patch (an old, validly signed envelope replayed is refused). Anything else raises PatchRefused:
no patch is better than an unverified one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from molam.errors import ConfigurationError, PatchRefused
from molam.payload import MAX_SAFE_INTEGER, PayloadError, parse_payload, parse_time

ENVELOPE_FORMAT = "selfheal.patch.v1"
MAX_SIGNATURES = 4  # current and next key, with room; bounds the verification work
# The registry issues envelopes for 300 s by default, 24 h at most (`selfheal api --envelope-ttl`):
# a longer one, or one issued ahead of this clock by more than the skew, was not issued by it.
MAX_LIFETIME = timedelta(hours=24)
MAX_CLOCK_SKEW = timedelta(minutes=5)
LANGUAGE = "python"
TRUSTED_KEYS_OPTION = "trusted_keys"


def key_id(public_key_pem: str | bytes) -> str:
    """The registry's key id: the first 16 hex digits of SHA-256 of the raw public key."""
    return _raw_key_id(_load_public_key(public_key_pem, where="public key"))


def _raw_key_id(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def _load_public_key(pem: object, *, where: str) -> Ed25519PublicKey:
    def bad(reason: str) -> ConfigurationError:
        return ConfigurationError(f"{where}: {reason}", option=TRUSTED_KEYS_OPTION)

    if isinstance(pem, bytes):
        try:
            pem = pem.decode("ascii")
        except UnicodeDecodeError:
            raise bad("is not PEM text") from None
    if not isinstance(pem, str):
        raise bad("must be PEM text")
    if "PRIVATE KEY" in pem:  # the signing key itself, pasted by mistake: it must never sit in an app
        raise bad("is a private key: pin the public key (`selfheal keygen` prints it)")
    try:
        key = serialization.load_pem_public_key(pem.encode("ascii"))
    except (ValueError, TypeError, UnicodeEncodeError, UnsupportedAlgorithm):
        raise bad("is not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise bad("is not an Ed25519 public key")
    return key


class TrustedKeys:
    """The pinned public keys (current and next), by key id."""

    def __init__(self, keys: Mapping[str, str | bytes]) -> None:
        if not isinstance(keys, Mapping):
            raise ConfigurationError("must map key ids to public keys (PEM)", option=TRUSTED_KEYS_OPTION)
        self._keys: dict[str, Ed25519PublicKey] = {}
        for given_id, pem in keys.items():
            key = _load_public_key(pem, where=f'key "{given_id}"')
            actual = _raw_key_id(key)
            if actual != given_id:
                raise ConfigurationError(
                    f'key "{given_id}": the id does not match the key (its id is {actual})', option=TRUSTED_KEYS_OPTION
                )
            self._keys[given_id] = key

    def __bool__(self) -> bool:
        return bool(self._keys)

    def get(self, kid: object) -> Ed25519PublicKey | None:
        return self._keys.get(kid) if isinstance(kid, str) else None


@dataclass(frozen=True)
class VerifiedPatch:
    id: str
    version: str
    sequence: int
    description: str
    severity: str
    error_signature: str
    operations: dict[str, Any]
    rollback_operations: dict[str, Any] | None
    issued_at: datetime
    expires_at: datetime
    receipt: str | None = None  # the registry's, for this token: outcome reports of this patch carry it


def verified_payload(envelope: Any, *, trusted: TrustedKeys) -> bytes:
    """The payload bytes, if a trusted key signed exactly them."""
    if not isinstance(envelope, dict) or envelope.get("format") != ENVELOPE_FORMAT:
        raise PatchRefused(f"not a {ENVELOPE_FORMAT} envelope")
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list) or not 1 <= len(signatures) <= MAX_SIGNATURES:
        raise PatchRefused(f"an envelope carries 1 to {MAX_SIGNATURES} signatures")
    payload = _base64(envelope.get("payload"), "payload")
    for entry in signatures:
        if not isinstance(entry, dict) or entry.get("alg") != "Ed25519":
            continue
        public_key = trusted.get(entry.get("keyId"))
        if public_key is None:
            continue
        try:
            public_key.verify(_base64(entry.get("signature"), "signature"), payload)
        except (InvalidSignature, PatchRefused):
            continue
        return payload
    raise PatchRefused("no valid signature from a trusted key")


def _base64(value: Any, what: str) -> bytes:
    """Canonical base64 only (RFC 4648: padded, no other character, unused bits zero), as in Node."""
    if not isinstance(value, str):
        raise PatchRefused(f"envelope {what} is not base64 text")
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise PatchRefused(f"envelope {what} is not valid base64") from None
    if base64.b64encode(decoded).decode("ascii") != value:
        raise PatchRefused(f"envelope {what} is not valid base64")
    return decoded


def open_envelope(envelope: Any, *, trusted: TrustedKeys, now: datetime, replay: ReplayGuard) -> VerifiedPatch:
    """Verify, then parse, then check language, times and replay; remember what was accepted."""
    payload = verified_payload(envelope, trusted=trusted)
    try:
        document = parse_payload(payload)
        patch = _patch(document)
    except ValueError as error:
        raise PatchRefused(f"signed payload is malformed: {error}") from None
    if document.get("sdk_language") != LANGUAGE:
        raise PatchRefused(f"patch {patch.id} is for {document.get('sdk_language')!r}, not {LANGUAGE}")
    check_times(patch, now=now)
    replay.accept(patch)
    return patch


def check_times(patch: VerifiedPatch, *, now: datetime) -> None:
    """Not expired, issued by the registry's rules, not ahead of this clock beyond the skew."""
    check_unexpired(patch, now=now)
    lifetime = patch.expires_at - patch.issued_at
    if lifetime <= timedelta(0):
        raise PatchRefused(f"patch {patch.id} envelope expires_at is not after its issued_at")
    if lifetime > MAX_LIFETIME:
        raise PatchRefused(
            f"patch {patch.id} envelope lifetime of {_seconds(lifetime)} s is above the "
            f"{_seconds(MAX_LIFETIME)} s maximum"
        )
    if patch.issued_at - now > MAX_CLOCK_SKEW:
        raise PatchRefused(
            f"patch {patch.id} envelope issued_at {patch.issued_at.isoformat()} is more than "
            f"{_seconds(MAX_CLOCK_SKEW)} s ahead of this clock"
        )


def _seconds(delta: timedelta) -> str:
    """Exact, as the Node SDK writes it: 86400, 86400.000001."""
    whole, micros = divmod(delta // timedelta(microseconds=1), 1_000_000)
    return f"{whole}.{micros:06d}".rstrip("0") if micros else str(whole)


def check_unexpired(patch: VerifiedPatch, *, now: datetime) -> None:
    """Also for a patch accepted earlier and used again while the registry cannot be asked."""
    if patch.expires_at <= now:
        raise PatchRefused(f"patch {patch.id} envelope expired at {patch.expires_at.isoformat()}")


def _patch(document: Any) -> VerifiedPatch:
    if not isinstance(document, dict):
        raise PayloadError("payload: is not an object")
    strings: dict[str, str] = {}
    for key in ("patch_id", "version", "description", "severity", "error_signature"):
        value = document.get(key)
        if not isinstance(value, str):
            raise PayloadError(f"{key}: must be a string")
        strings[key] = value
    sequence = document.get("sequence")
    if not isinstance(sequence, int) or isinstance(sequence, bool) or not 0 <= sequence <= MAX_SAFE_INTEGER:
        raise PayloadError("sequence: must be an integer from 0 to 2^53-1")
    semver_key(strings["version"])
    rollback = document.get("rollback_operations")
    if not isinstance(document.get("operations"), dict):
        raise PayloadError("operations: must be an object")
    if not (rollback is None or isinstance(rollback, dict)):
        raise PayloadError("rollback_operations: must be an object or null")
    return VerifiedPatch(
        id=strings["patch_id"],
        version=strings["version"],
        sequence=sequence,
        description=strings["description"],
        severity=strings["severity"],
        error_signature=strings["error_signature"],
        operations=document["operations"],
        rollback_operations=rollback,
        issued_at=parse_time(document.get("issued_at"), field="issued_at"),
        expires_at=parse_time(document.get("expires_at"), field="expires_at"),
    )


# The registry's pattern and length (the CRD's `spec.version`), ASCII digits only as in Node.
_SEMVER = re.compile(
    r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
)
MAX_VERSION_LENGTH = 64


def semver_key(version: str) -> tuple:
    """Order of semantic versions (a release after its pre-releases), as the registry orders them."""
    match = _SEMVER.fullmatch(version) if len(version) <= MAX_VERSION_LENGTH else None
    if match is None:
        shown = json.dumps(version[:40], ensure_ascii=False)
        raise PayloadError(f"version: {shown} is not a semantic version of at most {MAX_VERSION_LENGTH} characters")
    major, minor, patch, pre = match.groups()
    pre_key: tuple = (
        (1,)
        if pre is None
        else (0, *((0, int(part), "") if part.isdigit() else (1, 0, part) for part in pre.split(".")))
    )
    return (int(major), int(minor), int(patch), pre_key)


class ReplayGuard:
    """The highest version and sequence accepted per patch id, for this client's lifetime."""

    def __init__(self, seen: Mapping[str, tuple[str, int]] | None = None) -> None:
        self._seen: dict[str, tuple[str, int]] = dict(seen or {})
        self._lock = threading.Lock()

    def accept(self, patch: VerifiedPatch) -> None:
        with self._lock:
            previous = self._seen.get(patch.id)
            if previous is not None:
                version, sequence = previous
                if semver_key(patch.version) < semver_key(version):
                    raise PatchRefused(f"patch {patch.id} version {patch.version} is older than {version}, seen before")
                if patch.sequence < sequence:
                    raise PatchRefused(
                        f"patch {patch.id} sequence {patch.sequence} is lower than {sequence}, seen before"
                    )
            # Both are at least what was seen, so they become the new floor.
            self._seen[patch.id] = (patch.version, patch.sequence)
