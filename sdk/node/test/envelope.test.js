'use strict';
// Envelope verification: the shared vectors (tests/vectors/envelopes.json) that the Python SDK's
// tests read too, key pinning, and the sealing bytes the registry produces.

const assert = require('node:assert/strict');
const { test } = require('node:test');

const { ReplayGuard, TrustedKeys, compareVersions, keyId, openEnvelope } = require('../src/envelope');
const { ConfigurationError, PatchRefused } = require('../src/errors');
const { CURRENT, NEXT, TRUSTED, canonical, payloadFor, seal } = require('./support/keys');
const { vectors } = require('./support/world');

const ENVELOPES = vectors('envelopes.json');
const NOW = Date.parse(ENVELOPES.now);

function replayOf(seen) {
  return new ReplayGuard(seen);
}

for (const testCase of ENVELOPES.cases) {
  test(`envelope vector: ${testCase.name} (${testCase.description})`, () => {
    const trusted = new TrustedKeys(ENVELOPES.trusted);
    // The vectors carry Python patches: verified here exactly as the Python SDK verifies them.
    const open = () => openEnvelope(testCase.envelope, { trusted, now: NOW, replay: replayOf(testCase.seen),
      language: 'python' });
    if (testCase.expect.accepted) {
      const patch = open();
      assert.deepEqual([patch.id, patch.version, patch.sequence],
        [testCase.expect.patch_id, testCase.expect.version, testCase.expect.sequence]);
    } else {
      assert.throws(open, PatchRefused);
    }
  });
}

// The grammar both SDKs read signed payloads by (tests/sdk/test_envelope.py runs the same file).
const PAYLOADS = vectors('payloads.json');

for (const testCase of PAYLOADS.cases) {
  test(`payload vector: ${testCase.name} (${testCase.description})`, () => {
    const open = () => openEnvelope(testCase.envelope, { trusted: new TrustedKeys(PAYLOADS.trusted),
      now: Date.parse(PAYLOADS.now), replay: replayOf(testCase.seen), language: 'python' });
    const { expect } = testCase;
    if (expect.accepted) {
      const patch = open();
      assert.deepEqual({ accepted: true, patch_id: patch.id, version: patch.version, sequence: patch.sequence,
        description: patch.description, issued_at_us: Number(patch.issuedAt), expires_at_us: Number(patch.expiresAt) },
      expect);
    } else {
      assert.throws(open, (error) => error instanceof PatchRefused && error.message.includes(expect.reason),
        `refused with "${expect.reason}"`);
    }
  });
}

test('the vector keys are derived here exactly as tests/sdk/sealing.py derives them', () => {
  assert.deepEqual(TRUSTED, ENVELOPES.trusted);
});

test('canonical JSON here is byte for byte the registry\'s (sorted keys, no spaces, UTF-8)', () => {
  const valid = ENVELOPES.cases.find((c) => c.name === 'valid').envelope;
  const bytes = Buffer.from(valid.payload, 'base64');
  assert.equal(canonical(JSON.parse(bytes.toString('utf8'))), bytes.toString('utf8'));
  assert.deepEqual(seal(JSON.parse(bytes.toString('utf8')), CURRENT), valid); // Ed25519 is deterministic
});

test('this SDK takes node patches and refuses the Python ones', () => {
  const trusted = new TrustedKeys(TRUSTED);
  const valid = ENVELOPES.cases.find((c) => c.name === 'valid').envelope;
  assert.throws(() => openEnvelope(valid, { trusted, now: NOW, replay: new ReplayGuard() }), /not node/);
  const node = seal(payloadFor('p1', '401', [{ op: 'use_primary_credential' }], null), CURRENT);
  assert.equal(openEnvelope(node, { trusted, now: Date.now(), replay: new ReplayGuard() }).id, 'p1');
});

test('the replay floor rises with what was accepted', () => {
  const trusted = new TrustedKeys(TRUSTED);
  const replay = new ReplayGuard();
  const ops = [{ op: 'use_primary_credential' }];
  const newer = seal(payloadFor('p1', '401', ops, null, { version: '1.1.0', sequence: 9 }), CURRENT);
  const older = seal(payloadFor('p1', '401', ops, null, { version: '1.0.0', sequence: 5 }), CURRENT);
  openEnvelope(newer, { trusted, now: Date.now(), replay });
  assert.throws(() => openEnvelope(older, { trusted, now: Date.now(), replay }), /older/);
  openEnvelope(newer, { trusted, now: Date.now(), replay }); // the same revision again is fine
});

test('expiry is checked against the given time', () => {
  const envelope = seal(payloadFor('p1', '401', [{ op: 'use_primary_credential' }], null, { ttl: 60 }), CURRENT);
  assert.throws(() => openEnvelope(envelope, { trusted: new TrustedKeys(TRUSTED), now: Date.now() + 61000,
    replay: new ReplayGuard() }), /expired/);
});

test('pinned key ids must match their keys', () => {
  assert.equal(keyId(CURRENT.publicPem), CURRENT.keyId);
  assert.throws(() => new TrustedKeys({ [CURRENT.keyId]: NEXT.publicPem }), ConfigurationError);
  assert.throws(() => new TrustedKeys({ x: 'not a key' }), ConfigurationError);
});

test('semantic versions order as the registry orders them', () => {
  const ordered = ['1.0.0-alpha', '1.0.0-alpha.1', '1.0.0-alpha.beta', '1.0.0-beta', '1.0.0-beta.2',
    '1.0.0-beta.11', '1.0.0-rc.1', '1.0.0', '1.2.0', '1.10.0', '2.0.0'];
  for (let i = 1; i < ordered.length; i += 1) assert.equal(compareVersions(ordered[i - 1], ordered[i]), -1);
  assert.equal(compareVersions('1.0.0+build.1', '1.0.0'), 0);
  assert.throws(() => compareVersions('1.0', '1.0.0'));
});

test('a multi-megabyte payload is read in linear time: base64 and grammar, no RangeError', () => {
  const trusted = new TrustedKeys(TRUSTED);
  // 16 MB of base64 that is not canonical: the old pattern overflowed the stack on it.
  const garbage = { ...seal(payloadFor('p1', '401', [{ op: 'use_primary_credential' }], null), CURRENT),
    payload: `${'QUJD'.repeat(4 * 1024 * 1024)}!` };
  assert.throws(() => openEnvelope(garbage, { trusted, now: Date.now(), replay: new ReplayGuard() }),
    (error) => error instanceof PatchRefused && /payload is not valid base64/.test(error.message));
  // 12 MB of canonical base64 (a 9 MB description), signed: read whole, string by string.
  const large = seal(payloadFor('p-large', '401', [{ op: 'use_primary_credential' }], null,
    { description: 'é'.repeat(4.5 * 1024 * 1024) }), CURRENT);
  assert.ok(large.payload.length > 12 * 1024 * 1024);
  const patch = openEnvelope(large, { trusted, now: Date.now(), replay: new ReplayGuard() });
  assert.equal(patch.description.length, 4.5 * 1024 * 1024);
});
