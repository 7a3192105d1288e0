'use strict';
// The test keys of tests/sdk/sealing.py, derived the same way (Ed25519 seed = SHA-256 of a
// label), and sealing as the registry does: Ed25519 over the canonical JSON bytes of the payload.

const crypto = require('node:crypto');
const { keyId } = require('../../src/envelope');

const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

class TestKey {
  constructor(label) {
    const seed = crypto.createHash('sha256').update(label).digest();
    this.privateKey = crypto.createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der',
      type: 'pkcs8' });
    this.publicKey = crypto.createPublicKey(this.privateKey);
    this.publicPem = this.publicKey.export({ format: 'pem', type: 'spki' });
    this.keyId = keyId(this.publicKey);
  }

  signature(data) {
    return { alg: 'Ed25519', keyId: this.keyId, signature: crypto.sign(null, data, this.privateKey).toString('base64') };
  }
}

// Python's json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False) for the
// payloads' values: strings, safe integers, booleans, null, lists and objects.
function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.keys(value).sort().map((key) => `${JSON.stringify(key)}:${canonical(value[key])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function seal(payload, ...keys) {
  const data = Buffer.from(canonical(payload), 'utf8');
  return { format: 'selfheal.patch.v1', payload: data.toString('base64'), signatures: keys.map((key) => key.signature(data)) };
}

const CURRENT = new TestKey('molam test vectors: current key');
const NEXT = new TestKey('molam test vectors: next key');
const UNKNOWN = new TestKey('molam test vectors: a key nobody pinned');
const TRUSTED = { [CURRENT.keyId]: CURRENT.publicPem, [NEXT.keyId]: NEXT.publicPem };

function isoSeconds(ms) {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', '+00:00');
}

function payloadFor(patchId, signature, operations, rollback, {
  version = '1.0.0', sequence = 1, ttl = 300, language = 'node', description = 'test patch', severity = 'medium',
  now = Date.now(),
} = {}) {
  const document = (ops) => ({ format: 'selfheal.operations', version: 1, operations: ops });
  return { patch_id: patchId, version, sequence, sdk_language: language, error_signature: signature, description,
    severity, operations: document(operations), rollback_operations: rollback ? document(rollback) : null,
    issued_at: isoSeconds(now), expires_at: isoSeconds(now + ttl * 1000) };
}

module.exports = { TestKey, CURRENT, NEXT, UNKNOWN, TRUSTED, canonical, seal, payloadFor };
