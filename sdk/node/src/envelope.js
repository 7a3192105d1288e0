'use strict';
// Signed patch envelopes: verify the exact bytes first, parse them only then (as the Python
// SDK's molam/envelope.py and the registry's selfheal/api/signing.py).
//
//   {"format": "selfheal.patch.v1",
//    "payload": "<base64 of the payload's JSON bytes>",
//    "signatures": [{"alg": "Ed25519", "keyId": "<16 hex>", "signature": "<base64>"}]}
//
// A payload is accepted only if a pinned key signed it, it has not expired, it is for this
// SDK's language, and neither its version nor its sequence number is lower than one already
// accepted for the same patch (an old, validly signed envelope replayed is refused). Anything
// else throws PatchRefused: no patch is better than an unverified one.

const crypto = require('node:crypto');
const { ConfigurationError, PatchRefused } = require('./errors');

const ENVELOPE_FORMAT = 'selfheal.patch.v1';
const MAX_SIGNATURES = 4; // current and next key, with room; bounds the verification work
const LANGUAGE = 'node';
const STRICT_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

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

function base64(value, what) {
  if (typeof value !== 'string') throw new PatchRefused(`envelope ${what} is not base64 text`);
  if (!STRICT_BASE64.test(value)) throw new PatchRefused(`envelope ${what} is not valid base64`);
  return Buffer.from(value, 'base64');
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

const SEMVER = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/;

function semverKey(version) {
  const match = typeof version === 'string' ? SEMVER.exec(version) : null;
  if (match === null) throw new TypeError(`version ${JSON.stringify(version)} is not a semantic version`);
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

// --- Times with a UTC offset (what Python's datetime.fromisoformat accepts for them) -----------

const INSTANT = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,6}))?)?(Z|[+-]\d{2}:?\d{2}(?::?\d{2}(?:\.\d{1,6})?)?)$/;

function instant(value) {
  const match = typeof value === 'string' ? INSTANT.exec(value) : null;
  if (match === null) throw new TypeError(`${JSON.stringify(value)} is not a time with a UTC offset`);
  const [, y, mo, d, h, mi, s = '0', fraction = '', offset] = match;
  const year = Number(y); const month = Number(mo); const day = Number(d);
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
  if (year < 1 || month < 1 || month > 12 || day < 1 || day > days[month - 1] || Number(h) > 23
      || Number(mi) > 59 || Number(s) > 59) {
    throw new TypeError(`${JSON.stringify(value)} is not a valid time`);
  }
  let offsetMs = 0;
  if (offset !== 'Z') {
    const digits = offset.slice(1).replace(/:/g, '');
    const seconds = Number(digits.slice(0, 2)) * 3600 + Number(digits.slice(2, 4)) * 60 + Number(digits.slice(4) || 0);
    if (Number(digits.slice(0, 2)) > 23 || Number(digits.slice(2, 4)) > 59) {
      throw new TypeError(`${JSON.stringify(value)} has an invalid UTC offset`);
    }
    offsetMs = (offset[0] === '-' ? -1 : 1) * seconds * 1000;
  }
  const utc = new Date(0);
  utc.setUTCFullYear(year, month - 1, day);
  utc.setUTCHours(Number(h), Number(mi), Number(s), Number(fraction.padEnd(6, '0')) / 1000);
  return utc.getTime() - offsetMs;
}

function patchOf(document) {
  if (document === null || typeof document !== 'object' || Array.isArray(document)) {
    throw new TypeError('payload is not an object');
  }
  for (const key of ['patch_id', 'version', 'description', 'severity', 'error_signature']) {
    if (typeof document[key] !== 'string') {
      throw new TypeError('patch_id, version, description, severity and error_signature must be strings');
    }
  }
  const { sequence } = document;
  if (typeof sequence !== 'number' || !Number.isInteger(sequence) || sequence < 0) {
    throw new TypeError('sequence must be a non-negative integer');
  }
  semverKey(document.version);
  const rollback = document.rollback_operations === undefined ? null : document.rollback_operations;
  const isObject = (value) => value !== null && typeof value === 'object' && !Array.isArray(value);
  if (!isObject(document.operations) || !(rollback === null || isObject(rollback))) {
    throw new TypeError('operations must be an object, rollback_operations an object or null');
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
    issuedAt: instant(document.issued_at),
    expiresAt: instant(document.expires_at),
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

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Verify, then parse, then check expiry, language and replay; remember what was accepted.
 * `now`: epoch milliseconds. `language`: this SDK's ('node'); the shared vectors are Python's.
 */
function openEnvelope(envelope, { trusted, now, replay, language = LANGUAGE }) {
  const payload = verifiedPayload(envelope, trusted);
  let document;
  let patch;
  try {
    document = JSON.parse(UTF8.decode(payload));
    patch = patchOf(document);
  } catch (error) {
    throw new PatchRefused(`signed payload is malformed: ${error.message}`);
  }
  if (document.sdk_language !== language) {
    throw new PatchRefused(`patch ${patch.id} is for ${JSON.stringify(document.sdk_language)}, not ${language}`);
  }
  if (patch.expiresAt <= now) {
    throw new PatchRefused(`patch ${patch.id} envelope expired at ${new Date(patch.expiresAt).toISOString()}`);
  }
  replay.accept(patch);
  return patch;
}

module.exports = {
  ENVELOPE_FORMAT, MAX_SIGNATURES, LANGUAGE, TRUSTED_KEYS_OPTION, TrustedKeys, ReplayGuard, keyId, verifiedPayload, openEnvelope,
  compareVersions, semverKey, instant,
};
