'use strict';
// @molam/sdk/testing: what the double does for an application's tests — the real client healing
// through a fake registry, with no network. (The README's example runs from a packed install in
// package.test.js.)

const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { afterEach, beforeEach, test } = require('node:test');

const { ApiError, MolamClient, MolamConnectionError, MolamTimeout } = require('..');
const { FakeMolam } = require('../src/testing');
const { recordingLogger } = require('./support/world');

let fake;
const connect = net.Socket.prototype.connect;

beforeEach(() => {
  fake = new FakeMolam();
  // Any socket the code under test opens fails the test: the double needs none.
  net.Socket.prototype.connect = () => { throw new Error('@molam/sdk/testing opened a network connection'); };
});

afterEach(async () => {
  net.Socket.prototype.connect = connect;
  await fake.close();
});

const quiet = (options = {}) => fake.client({ logger: recordingLogger(), ...options });
const pay = (client, fields = {}) => client.createPayment({ amount: 1200, currency: 'XOF', country: 'SN', ...fields });

test('a revoked key heals through the declared patch, recorded and reported', async () => {
  fake.payments.fail({ status: 401, code: 'api_key_revoked', when: (request) => request.apiKey === 'pk_test' });
  const patchId = fake.registry.addPatch('401', [{ op: 'use_fallback_credential', name: 'MOLAM_FALLBACK_API_KEY' }],
    { rollback: [{ op: 'use_primary_credential' }], description: 'Injection clé API fallback sur 401' });
  const client = quiet({ apiKey: 'pk_test', fallbackCredentials: { MOLAM_FALLBACK_API_KEY: 'pk_fallback' } });
  assert.equal((await pay(client)).status, 'succeeded');
  assert.deepEqual(client.getPatchHistory().map((patch) => [patch.id, patch.success]), [[patchId, true]]);
  assert.deepEqual((await fake.reports()).map((report) => [report.patch_id, report.sdk, report.success]),
    [[patchId, 'node', true]]);
  assert.equal(fake.payments.requests.at(-1).apiKey, 'pk_fallback');
  assert.equal(fake.registry.lookups[0].code, 'api_key_revoked');
});

test('a timeout heals without waiting and charges once', async () => {
  fake.payments.fail({ timeout: true, times: 1 });
  fake.registry.addPatch('ETIMEDOUT', [{ op: 'set', setting: 'timeout_ms', value: 30000 }],
    { rollback: [{ op: 'set', setting: 'timeout_ms', value: 10000 }] });
  const client = quiet();
  const payment = await pay(client);
  assert.equal(client.timeout, 30000);
  assert.deepEqual([...fake.payments.payments.keys()], [payment.id]);
});

test('an unreachable host heals by moving to the backup API', async () => {
  fake.payments.fail({ unreachable: true, when: (request) => request.host === 'api.molam.com' });
  fake.registry.addPatch('ECONNREFUSED', [{ op: 'set', setting: 'base_url', value: 'https://api-backup.molam.com' }],
    { rollback: [{ op: 'set', setting: 'base_url', value: 'https://api.molam.com' }] });
  await pay(quiet());
  assert.deepEqual(fake.payments.requests.map((request) => request.host), ['api.molam.com', 'api-backup.molam.com']);
});

test('a patch that does not heal is rolled back and reported', async () => {
  fake.payments.fail({ status: 400, code: 'invalid_currency', message: 'currency not supported' });
  const patchId = fake.registry.addPatch('invalid_currency',
    [{ op: 'set', setting: 'default_currency', value: 'XOF' }],
    { rollback: [{ op: 'set', setting: 'default_currency', value: null }] });
  const client = quiet();
  await assert.rejects(pay(client, { currency: 'XYZ' }), (error) => error instanceof ApiError
    && error.code === 'invalid_currency' && error.detail === 'currency not supported');
  assert.equal(client.defaultCurrency, null);
  const [report] = await fake.reports();
  assert.deepEqual([report.patch_id, report.success, report.rollback_triggered], [patchId, false, true]);
});

test('429 with Retry-After and a backoff patch', async () => {
  fake.payments.fail({ status: 429, code: 'rate_limited', retryAfter: 0, times: 2 });
  fake.registry.addPatch('429', [{ op: 'retry_with_backoff', attempts: 3, base_delay_ms: 10, max_delay_ms: 100,
    jitter: false }]);
  assert.equal((await pay(quiet())).status, 'succeeded');
  assert.equal(fake.payments.requests.length, 3);
});

test('no patch for the error: it is thrown, and the miss was looked up', async () => {
  fake.payments.fail({ unreachable: true });
  await assert.rejects(quiet().getPayment('pay_1'), MolamConnectionError);
  assert.match(fake.registry.lookups[0].error, /^ECONNREFUSED: /);
});

test('kill switch and registry outage', async () => {
  fake.payments.fail({ status: 401, code: 'api_key_revoked', when: (request) => request.apiKey === 'pk_test_fake' });
  const patchId = fake.registry.addPatch('api_key_revoked',
    [{ op: 'use_fallback_credential', name: 'MOLAM_FALLBACK_API_KEY' }],
    { rollback: [{ op: 'use_primary_credential' }] });
  const fallbackCredentials = { MOLAM_FALLBACK_API_KEY: 'pk_fallback' };
  await pay(quiet({ fallbackCredentials }));
  fake.registry.unavailable = true; // a new client has no verified patch to fall back on
  await assert.rejects(pay(quiet({ fallbackCredentials })), ApiError);
  fake.registry.unavailable = false;
  fake.registry.removePatch(patchId);
  await assert.rejects(pay(quiet({ fallbackCredentials })), ApiError);
});

test('the fake registry writes bootstrap files', async () => {
  fake.payments.fail({ timeout: true, times: 1 });
  fake.registry.addPatch('ETIMEDOUT', [{ op: 'set', setting: 'timeout_ms', value: 30000 }]);
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'molam-fake-'));
  try {
    const file = path.join(directory, 'bootstrap.json');
    fs.writeFileSync(file, JSON.stringify({ envelopes: fake.registry.envelopes() }));
    fake.registry.unavailable = true;
    const client = quiet({ bootstrapEnvelopes: file });
    await pay(client);
    assert.equal(client.timeout, 30000);
  } finally {
    fs.rmSync(directory, { recursive: true, force: true });
  }
});

test('a well-formed but unknown operation is refused by the client, as a served one would be', async () => {
  fake.registry.addPatch('401', [{ op: 'exec', code: '1' }]);
  fake.payments.fail({ status: 401, code: 'api_key_revoked' });
  await assert.rejects(quiet().getPayment('pay_1'), ApiError);
  assert.equal((await fake.reports())[0].context.reason, 'operations[0]: unknown operation "exec"');
});

for (const [name, call, message] of [
  ['no operations', () => fake.registry.addPatch('401', []), /operations must be a list of 1 to 32 operations/],
  ['empty signature', () => fake.registry.addPatch('', [{ op: 'use_primary_credential' }]), /errorSignature/],
  ['no failure kind', () => fake.payments.fail({}), /exactly one of/],
  ['success status', () => fake.payments.fail({ status: 200 }), /HTTP error status/],
]) {
  test(`a declaration the double cannot serve fails at once: ${name}`, () => {
    assert.throws(call, message);
  });
}

test('fake clients are real clients', () => {
  const client = quiet();
  assert.ok(client instanceof MolamClient && client.selfHealing);
  assert.deepEqual(fake.registry.trustedKeys, { [fake.registry.keyId]: fake.registry.publicKeyPem });
});

test('a declared timeout is a MolamTimeout without a patch', async () => {
  fake.payments.fail({ timeout: true });
  await assert.rejects(quiet().getPayment('pay_1'), MolamTimeout);
});
