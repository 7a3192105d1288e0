'use strict';
// Signed patch envelopes: verify the exact bytes first, parse them only then (as the Python
// SDK's molam/envelope.py and the registry's selfheal/api/signing.py).
//
//   {"format": "selfheal.patch.v1",
//    "payload": "<base64 of the payload's JSON bytes>",
//    "signatures": [{"alg": "Ed25519", "keyId": "<16 hex>", "signature": "<base64>"}]}
//
// The signature covers the bytes received, then they are read by one grammar both SDKs share
// (./payload.js). A payload is accepted only if a pinned key signed it, it is for this SDK's
// language, its times hold (issued at most MAX_CLOCK_SKEW ahead of this clock, a lifetime of at
// most MAX_LIFETIME, not expired), and neither its version nor its sequence number is lower than
// one already accepted for the same patch (an old, validly signed envelope replayed is refused).
// Anything else throws PatchRefused: no patch is better than an unverified one.

const crypto = require('node:crypto');
const { ConfigurationError, PatchRefused } = require('./errors');
const { MAX_SAFE_INTEGER, PayloadError, isoOfMicros, microsOf, parsePayload, parseTime } = require('./payload');

const ENVELOPE_FORMAT = 'selfheal.patch.v1';
const MAX_SIGNATURES = 4; // current and next key, with room; bounds the verification work
const LANGUAGE = 'node';
// The registry issues envelopes for 300 s by default, 24 h at most (`selfheal api --envelope-ttl`):
// a longer one, or one issued ahead of this clock by more than the skew, was not issued by it.
const MAX_LIFETIME_SECONDS = 86400;
const MAX_CLOCK_SKEW_SECONDS = 300;

const TRUSTED_KEYS_OPTION = 'trustedKeys';

function loadPublicKey(pem, where) {
  const bad = (reason) => new ConfigurationError(`${where}: ${reason}`, { option: TRUSTED_KEYS_OPTION });
  let text = pem;
  if (Buffer.isBuffer(text)) {
    text = text.toString('latin1');
    if (!/^[\x00-\x7f]*$/.test(text)) throw bad('is not PEM text');
  }
  if (typeof text !== 'string') throw bad('must be PEM text');
  // The signing key itself, pasted by mistake: it must never sit in an application (and Node
  // would quietly derive the public key from it).
  if (text.includes('PRIVATE KEY')) throw bad('is a private key: pin the public key (`selfheal keygen` prints it)');
  let key;
  try {
    key = crypto.createPublicKey({ key: text, format: 'pem' });
  } catch {
    throw bad('is not a PEM public key');
  }
  if (key.asymmetricKeyType !== 'ed25519') throw bad('is not an Ed25519 public key');
  return key;
}

function rawPublicKey(key) {
  return Buffer.from(key.export({ format: 'jwk' }).x, 'base64url');
}

function rawKeyId(key) {
  return crypto.createHash('sha256').update(rawPublicKey(key)).digest('hex').slice(0, 16);
}

/** The registry's key id: the first 16 hex digits of SHA-256 of the raw public key. */
function keyId(publicKeyPem) {
  if (publicKeyPem instanceof crypto.KeyObject) return rawKeyId(publicKeyPem);
  return rawKeyId(loadPublicKey(publicKeyPem, 'public key'));
}

/** The pinned public keys (current and next), by key id. */
class TrustedKeys {
  constructor(keys = {}) {
    this.keys = new Map();
    if (keys === null || typeof keys !== 'object' || Array.isArray(keys) || Buffer.isBuffer(keys)) {
      throw new ConfigurationError('must map key ids to public keys (PEM)', { option: TRUSTED_KEYS_OPTION });
    }
    for (const [givenId, pem] of Object.entries(keys)) {
      const key = loadPublicKey(pem, `key "${givenId}"`);
      const actual = rawKeyId(key);
      if (actual !== givenId) {
        throw new ConfigurationError(`key "${givenId}": the id does not match the key (its id is ${actual})`,
          { option: TRUSTED_KEYS_OPTION });
      }
      this.keys.set(givenId, key);
    }
  }

  get size() {
    return this.keys.size;
  }

  get(kid) {
    return typeof kid === 'string' ? this.keys.get(kid) : undefined;
  }
}

// Canonical base64 only (RFC 4648: padded, no other character, unused bits zero), as in Python.
// Decoding then encoding again is linear: no pattern to overflow the stack on a large input.
function base64(value, what) {
  if (typeof value !== 'string') throw new PatchRefused(`envelope ${what} is not base64 text`);
  const decoded = Buffer.from(value, 'base64'); // lenient: skips what is not base64, hence the check
  if (decoded.toString('base64') !== value) throw new PatchRefused(`envelope ${what} is not valid base64`);
  return decoded;
}

/** The payload bytes, if a trusted key signed exactly them. */
function verifiedPayload(envelope, trusted) {
  if (envelope === null || typeof envelope !== 'object' || Array.isArray(envelope)
      || envelope.format !== ENVELOPE_FORMAT) {
    throw new PatchRefused(`not a ${ENVELOPE_FORMAT} envelope`);
  }
  const { signatures } = envelope;
  if (!Array.isArray(signatures) || signatures.length < 1 || signatures.length > MAX_SIGNATURES) {
    throw new PatchRefused(`an envelope carries 1 to ${MAX_SIGNATURES} signatures`);
  }
  const payload = base64(envelope.payload, 'payload');
  for (const entry of signatures) {
    if (entry === null || typeof entry !== 'object' || entry.alg !== 'Ed25519') continue;
    const publicKey = trusted.get(entry.keyId);
    if (publicKey === undefined) continue;
    let valid = false;
    try {
      valid = crypto.verify(null, payload, publicKey, base64(entry.signature, 'signature'));
    } catch {
      valid = false; // malformed signature: not a valid one
    }
    if (valid) return payload;
  }
  throw new PatchRefused('no valid signature from a trusted key');
}

// --- Semantic versions, ordered as the registry orders them (a release after its pre-releases) --

// The registry's pattern and length (the CRD's `spec.version`).
const SEMVER = new RegExp('^(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)'
  + '(?:-([0-9A-Za-z-]+(?:\\.[0-9A-Za-z-]+)*))?(?:\\+[0-9A-Za-z-]+(?:\\.[0-9A-Za-z-]+)*)?$');
const MAX_VERSION_LENGTH = 64;

function semverKey(version) {
  const match = typeof version === 'string' && version.length <= MAX_VERSION_LENGTH ? SEMVER.exec(version) : null;
  if (match === null) {
    const shown = JSON.stringify(typeof version === 'string' ? version.slice(0, 40) : version);
    throw new PayloadError(`version: ${shown} is not a semantic version of at most ${MAX_VERSION_LENGTH} characters`);
  }
  const pre = match[4] === undefined ? [[1]] : [[0], ...match[4].split('.').map(
    (part) => (/^\d+$/.test(part) ? [0, BigInt(part), ''] : [1, 0n, part]))];
  return [BigInt(match[1]), BigInt(match[2]), BigInt(match[3]), pre];
}

// Python's tuple ordering over the keys above.
function compareKeys(a, b) {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i += 1) {
    const x = a[i];
    const y = b[i];
    const order = Array.isArray(x) ? compareKeys(x, y) : x < y ? -1 : x > y ? 1 : 0;
    if (order !== 0) return order;
  }
  return a.length - b.length;
}

function compareVersions(a, b) {
  return Math.sign(compareKeys(semverKey(a), semverKey(b)));
}

const isObject = (value) => value !== null && typeof value === 'object' && !Array.isArray(value);

function patchOf(document) {
  if (!isObject(document)) throw new PayloadError('payload: is not an object');
  const own = (key) => (Object.hasOwn(document, key) ? document[key] : undefined);
  for (const key of ['patch_id', 'version', 'description', 'severity', 'error_signature']) {
    if (typeof own(key) !== 'string') throw new PayloadError(`${key}: must be a string`);
  }
  const sequence = own('sequence');
  if (typeof sequence !== 'number' || !Number.isInteger(sequence) || sequence < 0 || sequence > MAX_SAFE_INTEGER) {
    throw new PayloadError('sequence: must be an integer from 0 to 2^53-1');
  }
  semverKey(document.version);
  const rollback = own('rollback_operations') === undefined ? null : own('rollback_operations');
  if (!isObject(own('operations'))) throw new PayloadError('operations: must be an object');
  if (!(rollback === null || isObject(rollback))) {
    throw new PayloadError('rollback_operations: must be an object or null');
  }
  return Object.freeze({
    id: document.patch_id,
    version: document.version,
    sequence,
    description: document.description,
    severity: document.severity,
    errorSignature: document.error_signature,
    operations: document.operations,
    rollbackOperations: rollback,
    issuedAt: parseTime(own('issued_at'), 'issued_at'), // microseconds since the epoch (BigInt)
    expiresAt: parseTime(own('expires_at'), 'expires_at'),
  });
}

/** The highest version and sequence accepted per patch id, for this client's lifetime. */
class ReplayGuard {
  constructor(seen = {}) {
    this.seen = new Map(Object.entries(seen).map(([id, value]) => [id, { ...value }]));
  }

  accept(patch) {
    const previous = this.seen.get(patch.id);
    if (previous !== undefined) {
      if (compareVersions(patch.version, previous.version) < 0) {
        throw new PatchRefused(`patch ${patch.id} version ${patch.version} is older than ${previous.version}, seen before`);
      }
      if (patch.sequence < previous.sequence) {
        throw new PatchRefused(`patch ${patch.id} sequence ${patch.sequence} is lower than ${previous.sequence}, `
          + 'seen before');
      }
    }
    // Both are at least what was seen, so they become the new floor.
    this.seen.set(patch.id, { version: patch.version, sequence: patch.sequence });
  }
}

/**
 * Verify, then parse, then check language, times and replay; remember what was accepted.
 * `now`: epoch milliseconds. `language`: this SDK's ('node'); the shared vectors are Python's.
 */
function openEnvelope(envelope, { trusted, now, replay, language = LANGUAGE }) {
  const payload = verifiedPayload(envelope, trusted);
  let document;
  let patch;
  try {
    document = parsePayload(payload);
    patch = patchOf(document);
  } catch (error) {
    throw new PatchRefused(`signed payload is malformed: ${error.message}`);
  }
  if (document.sdk_language !== language) {
    throw new PatchRefused(`patch ${patch.id} is for ${JSON.stringify(document.sdk_language)}, not ${language}`);
  }
  checkTimes(patch, now);
  replay.accept(patch);
  return patch;
}

/** Not expired, issued by the registry's rules, not ahead of this clock beyond the skew. */
function checkTimes(patch, now) {
  checkUnexpired(patch, now);
  const lifetime = patch.expiresAt - patch.issuedAt;
  if (lifetime <= 0n) throw new PatchRefused(`patch ${patch.id} envelope expires_at is not after its issued_at`);
  if (lifetime > BigInt(MAX_LIFETIME_SECONDS) * 1000000n) {
    throw new PatchRefused(`patch ${patch.id} envelope lifetime of ${secondsOf(lifetime)} s is above `
      + `the ${MAX_LIFETIME_SECONDS} s maximum`);
  }
  if (patch.issuedAt - microsOf(now) > BigInt(MAX_CLOCK_SKEW_SECONDS) * 1000000n) {
    throw new PatchRefused(`patch ${patch.id} envelope issued_at ${isoOfMicros(patch.issuedAt)} is more than `
      + `${MAX_CLOCK_SKEW_SECONDS} s ahead of this clock`);
  }
}

/** Microseconds (BigInt) as exact seconds, as the Python SDK writes them: 86400, 86400.000001. */
function secondsOf(micros) {
  const whole = micros / 1000000n;
  const fraction = micros % 1000000n;
  return fraction === 0n ? String(whole) : `${whole}.${String(fraction).padStart(6, '0').replace(/0+$/, '')}`;
}

/** Also for a patch accepted earlier and used again while the registry cannot be asked. `now`: epoch ms. */
function checkUnexpired(patch, now) {
  if (patch.expiresAt <= microsOf(now)) {
    throw new PatchRefused(`patch ${patch.id} envelope expired at ${isoOfMicros(patch.expiresAt)}`);
  }
}

/** True when the patch's envelope has expired at `now` (epoch ms). */
function isExpired(patch, now) {
  return patch.expiresAt <= microsOf(now);
}

module.exports = {
  ENVELOPE_FORMAT, MAX_SIGNATURES, LANGUAGE, TRUSTED_KEYS_OPTION, MAX_LIFETIME_SECONDS, MAX_CLOCK_SKEW_SECONDS,
  TrustedKeys, ReplayGuard, keyId, verifiedPayload, openEnvelope, checkTimes, checkUnexpired, isExpired,
  compareVersions, semverKey,
};
