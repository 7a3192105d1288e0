'use strict';
// The six corrections healed from Node against the same local payments server as the Python
// SDK's tests (tests/sdk/payments_server.py, a child process: real HTTP, real HMAC checks), with
// a registry stub over real HTTP serving envelopes signed in the test.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { after, afterEach, before, beforeEach, test } = require('node:test');

const { ApiError, MolamClient, MolamTimeout } = require('..');
const { CURRENT, TRUSTED, payloadFor, seal } = require('./support/keys');
const { RegistryStub, TOKEN, receiptFor } = require('./support/registry-stub');
const { PaymentsServer, recordingLogger, waitUntil } = require('./support/world');

const FALLBACK = [{ op: 'use_fallback_credential', name: 'MOLAM_FALLBACK_API_KEY' },
  { op: 'log', level: 'warning', message: '⚡ 401: using fallback API key' }];
const PRIMARY = [{ op: 'use_primary_credential' }];

let payments;
let registry;
let applied;
let logger;
let clients;

before(async () => { payments = await PaymentsServer.start(); });
after(async () => { await payments.stop(); });

beforeEach(async () => {
  await payments.reset();
  registry = await new RegistryStub().start();
  applied = [];
  logger = recordingLogger();
  clients = [];
});

afterEach(async () => {
  await Promise.all(clients.map((client) => client.close()));
  await registry.stop();
});

function makeClient(options = {}) {
  const client = new MolamClient({
    apiKey: 'pk_primary', secretKey: payments.secretKey, baseUrl: payments.url, timeout: 2000,
    selfhealUrl: registry.url, selfhealToken: TOKEN, trustedKeys: TRUSTED,
    fallbackCredentials: { MOLAM_FALLBACK_API_KEY: 'pk_fallback' }, onPatchApplied: (patch) => applied.push(patch),
    reportInterval: 50, logger, ...options,
  });
  clients.push(client);
  return client;
}

async function rejects(promise) {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail('the call succeeded');
}

test('401 revoked key heals with the fallback key named in the patch', async () => {
  await payments.behave({ revoked_keys: ['pk_primary'] });
  const patchId = registry.add('401', FALLBACK, PRIMARY, { description: 'Injection clé API fallback sur 401',
    severity: 'critical' });
  const client = makeClient();
  const payment = await client.createPayment({ amount: 5000, currency: 'XOF', country: 'SN' });
  assert.equal(payment.status, 'succeeded');
  const { requests } = await payments.state();
  assert.equal(requests.at(-1).headers.authorization, 'Bearer pk_fallback');
  assert.equal(client.credential, 'MOLAM_FALLBACK_API_KEY');
  // The runbook's request body, with the error's code beside it.
  assert.deepEqual(registry.lookups, [{ sdk: 'node', error: '401 Unauthorized: api_key_revoked', status: 401,
    code: 'api_key_revoked', context: { operation: 'create_payment', method: 'POST', path: '/v1/payments',
      sdk_version: '0.1.0' } }]);
  assert.match(logger.text(), /⚡ Molam SDK applied self-healing patch p-401 v1\.0\.0/);
  assert.match(logger.text(), /⚡ 401: using fallback API key/);
  assert.equal(applied.length, 1);
  const [patch] = applied;
  assert.deepEqual([patch.id, patch.description, patch.severity, patch.success, patch.rollbackTriggered],
    [patchId, 'Injection clé API fallback sur 401', 'critical', true, false]);
  assert.deepEqual(client.getPatchHistory(), [patch]);
  await waitUntil(() => registry.reports.length === 1, { what: 'the report' });
  const report = registry.reports[0];
  assert.deepEqual([report.patch_id, report.sdk, report.error, report.success, report.rollback_triggered,
    report.patch_applied], [patchId, 'node', '401 Unauthorized: api_key_revoked', true, false, true]);
  assert.equal(report.receipt, receiptFor(patchId)); // the answer's receipt, sent back unread
  // Healed in memory: the next call goes straight through.
  await client.getPayment(payment.id);
  assert.equal(registry.lookups.length, 1);
});

test('timeout (ETIMEDOUT) heals by raising the timeout and charges once', async () => {
  await payments.behave({ slow_seconds: 0.6 });
  registry.add('ETIMEDOUT', [{ op: 'set', setting: 'timeout_ms', value: 5000 }],
    [{ op: 'set', setting: 'timeout_ms', value: 300 }]);
  const client = makeClient({ timeout: 300 });
  const payment = await client.createPayment({ amount: 1200, currency: 'XOF', country: 'SN' });
  assert.equal(client.timeout, 5000);
  assert.match(registry.lookups[0].error, /^ETIMEDOUT: /);
  assert.equal(registry.lookups[0].code, 'ETIMEDOUT');
  assert.equal('status' in registry.lookups[0], false);
  // The slow first attempt and the retry share one Idempotency-Key: one payment, not two.
  await waitUntil(async () => (await payments.state()).finished === 2, { what: 'both attempts finished' });
  assert.deepEqual((await payments.state()).payments, [payment.id]);
});

test('invalid_currency heals with the default currency', async () => {
  registry.add('invalid_currency', [{ op: 'set', setting: 'default_currency', value: 'XOF' }],
    [{ op: 'set', setting: 'default_currency', value: null }]);
  const client = makeClient();
  const payment = await client.createPayment({ amount: 900, currency: 'XYZ', country: 'SN' });
  assert.equal(payment.currency, 'XOF');
  assert.deepEqual([registry.lookups[0].code, registry.lookups[0].status], ['invalid_currency', 400]);
});

test('a bad HMAC signature from a skewed clock heals by signing with the server time', async () => {
  registry.add('invalid_signature', [{ op: 'resign_request', use_server_time: true }],
    [{ op: 'set', setting: 'clock_skew_seconds', value: 0 }]);
  const client = makeClient({ clock: () => Date.now() - 120000 }); // this machine's clock is two minutes late
  const payment = await client.createPayment({ amount: 700, currency: 'XOF', country: 'SN' });
  assert.equal(payment.status, 'succeeded');
  assert.ok(client.clockSkewSeconds >= 118 && client.clockSkewSeconds <= 122, String(client.clockSkewSeconds));
  await client.getPayment(payment.id);
  assert.equal(registry.lookups.length, 1);
});

test('429 heals with backoff and honours Retry-After', async () => {
  await payments.behave({ rate_limited_requests: 2, retry_after_seconds: 1 });
  registry.add('429', [{ op: 'retry_with_backoff', attempts: 3, base_delay_ms: 10, max_delay_ms: 2000, jitter: false }],
    [{ op: 'set', setting: 'max_retries', value: 0 }]);
  const client = makeClient();
  const started = performance.now();
  const payment = await client.createPayment({ amount: 300, currency: 'XOF', country: 'SN' });
  assert.equal(payment.status, 'succeeded');
  assert.ok(performance.now() - started >= 1000); // waited Retry-After, not just the 10 ms backoff
  assert.equal(client.maxRetries, 3);
  assert.equal((await payments.state()).requests.length, 3);
});

test('429 with a Retry-After beyond the patch\'s max delay is not hammered', async () => {
  await payments.behave({ rate_limited_requests: 5, retry_after_seconds: 30 });
  registry.add('429', [{ op: 'retry_with_backoff', attempts: 3, base_delay_ms: 10, max_delay_ms: 2000, jitter: true }],
    [{ op: 'set', setting: 'max_retries', value: 0 }]);
  const client = makeClient();
  const error = await rejects(client.createPayment({ amount: 300, currency: 'XOF', country: 'SN' }));
  assert.ok(error instanceof ApiError);
  assert.equal(error.status, 429);
  assert.equal((await payments.state()).requests.length, 2);
  assert.equal(client.maxRetries, 0); // rolled back
});

test('400 missing required field heals by filling defaults; the caller\'s value wins', async () => {
  registry.add('400', [{ op: 'fill_required_fields', fields: { country: 'SN' } },
    { op: 'log', level: 'warning', message: '⚡ 400: required fields filled' }], [{ op: 'clear_filled_fields' }]);
  const client = makeClient();
  assert.equal((await client.createPayment({ amount: 100, currency: 'XOF' })).country, 'SN');
  assert.equal((await client.createPayment({ amount: 100, currency: 'XOF', country: 'CI' })).country, 'CI');
});

test('ECONNREFUSED asks for the connection error by its code; a retry that fails rolls back', async () => {
  const port = await closedPort();
  registry.add('ECONNREFUSED', [{ op: 'set', setting: 'base_url', value: `https://localhost:${await closedPort()}` }],
    null);
  const client = makeClient({ baseUrl: `http://127.0.0.1:${port}`, allowedHosts: ['localhost'] });
  const error = await rejects(client.createPayment({ amount: 1, currency: 'XOF', country: 'SN' }));
  assert.equal(error.code, 'ECONNREFUSED');
  assert.equal(registry.lookups[0].code, 'ECONNREFUSED');
  assert.match(registry.lookups[0].error, /^ECONNREFUSED: /);
  assert.equal(client.baseUrl, `http://127.0.0.1:${port}`);
  assert.deepEqual(applied.map((p) => [p.success, p.rollbackTriggered]), [[false, true]]);
});

test('a failed retry rolls back at once and says so', async () => {
  await payments.behave({ revoked_keys: ['pk_primary', 'pk_fallback'] });
  const patchId = registry.add('401', FALLBACK, PRIMARY);
  const client = makeClient();
  const error = await rejects(client.createPayment({ amount: 5000, currency: 'XOF', country: 'SN' }));
  assert.equal(error.status, 401);
  assert.equal(client.credential, null);
  assert.match(logger.text(), /rolled back self-healing patch/);
  assert.deepEqual(applied.map((p) => [p.id, p.success, p.rollbackTriggered]), [[patchId, false, true]]);
  await waitUntil(() => registry.reports.length === 1, { what: 'the report' });
  assert.deepEqual([registry.reports[0].success, registry.reports[0].rollback_triggered], [false, true]);
});

test('a patch without rollback operations restores the previous settings', async () => {
  await payments.behave({ revoked_keys: ['pk_primary', 'pk_fallback'] });
  registry.add('401', [...FALLBACK, { op: 'set', setting: 'max_retries', value: 2 }], null);
  const client = makeClient();
  const before = client.state;
  await rejects(client.createPayment({ amount: 5000, currency: 'XOF', country: 'SN' }));
  assert.equal(client.state, before);
});

const rewritePayload = (envelope) => {
  // Still valid JSON with valid operations: only the signature can tell.
  const payload = Buffer.from(envelope.payload, 'base64').toString('utf8').replace('"test patch"', '"evil patch"');
  return { ...envelope, payload: Buffer.from(payload, 'utf8').toString('base64') };
};
const otherKeyId = (envelope) => ({ ...envelope, signatures: [{ ...envelope.signatures[0], keyId: '0000000000000000' }] });

for (const [name, tamper] of [['payload', rewritePayload], ['key id', otherKeyId]]) {
  test(`a tampered envelope (${name}) is refused and the original error raised`, async () => {
    await payments.behave({ revoked_keys: ['pk_primary'] });
    registry.add('401', FALLBACK, PRIMARY);
    registry.tamper = tamper;
    const client = makeClient();
    const before = client.state;
    const error = await rejects(client.createPayment({ amount: 5000, currency: 'XOF', country: 'SN' }));
    assert.equal(error.code, 'api_key_revoked');
    assert.equal(client.state, before);
    assert.deepEqual(applied, []);
    assert.match(logger.text(), /refused a self-healing envelope: no valid signature/);
    await waitUntil(() => registry.reports.length === 1, { what: 'the report' });
    assert.deepEqual([registry.reports[0].patch_applied, registry.reports[0].patch_id], [false, null]);
  });
}

test('an expired, oversized or Python envelope is refused', async () => {
  await payments.behave({ revoked_keys: ['pk_primary'] });
  registry.add('401', FALLBACK, PRIMARY, { ttl: -1 });
  await rejects(makeClient().createPayment({ amount: 1, currency: 'XOF', country: 'SN' }));
  registry.add('401', FALLBACK, PRIMARY);
  await rejects(makeClient({ maxEnvelopeBytes: 256 }).createPayment({ amount: 1, currency: 'XOF', country: 'SN' }));
  registry.add('401', FALLBACK, PRIMARY, { language: 'python' });
  await rejects(makeClient().createPayment({ amount: 1, currency: 'XOF', country: 'SN' }));
  assert.equal(registry.lookups.length, 3);
  assert.deepEqual(applied, []);
});

test('an envelope replayed with an older sequence is refused', async () => {
  registry.add('invalid_currency', [{ op: 'set', setting: 'default_currency', value: 'XOF' }], null, { sequence: 7 });
  const client = makeClient();
  await client.createPayment({ amount: 1, currency: 'XYZ', country: 'SN' });
  registry.add('invalid_currency', [{ op: 'set', setting: 'default_currency', value: 'EUR' }], null, { sequence: 6 });
  await rejects(client.createPayment({ amount: 1, currency: 'XYZ', country: 'SN' }));
  assert.equal(client.defaultCurrency, 'XOF');
});

test('registry unreachable: the last verified patch is used, until the registry says "no patch"', async () => {
  registry.add('invalid_currency', [{ op: 'set', setting: 'default_currency', value: 'XOF' }], null);
  const client = makeClient();
  await client.createPayment({ amount: 1, currency: 'XYZ', country: 'SN' });
  registry.lookupStatus = 503;
  assert.equal((await client.createPayment({ amount: 2, currency: 'XYZ', country: 'SN' })).currency, 'XOF');
  assert.equal(client.getPatchHistory().length, 2);
  // The registry saying "no patch" (switched off) ends the fallback.
  registry.lookupStatus = null;
  registry.patches.clear();
  await rejects(client.createPayment({ amount: 3, currency: 'XYZ', country: 'SN' }));
  registry.lookupStatus = 503;
  await rejects(client.createPayment({ amount: 4, currency: 'XYZ', country: 'SN' }));
});

test('registry down without a verified patch: a plain SDK', async () => {
  await payments.behave({ revoked_keys: ['pk_primary'] });
  const client = makeClient({ selfhealUrl: `http://127.0.0.1:${await closedPort()}` });
  const error = await rejects(client.createPayment({ amount: 1, currency: 'XOF', country: 'SN' }));
  assert.equal(error.code, 'api_key_revoked');
  await waitUntil(() => client.pendingReports === 1, { what: 'the miss kept for reporting' });
});

test('a silent registry never holds the caller beyond its timeout', async () => {
  const held = [];
  const silent = net.createServer((socket) => held.push(socket)); // accepts, never answers
  await new Promise((resolve) => silent.listen(0, '127.0.0.1', resolve));
  try {
    await payments.behave({ revoked_keys: ['pk_primary'] });
    const client = makeClient({ selfhealUrl: `http://127.0.0.1:${silent.address().port}`, timeout: 500 });
    const started = performance.now();
    await rejects(client.createPayment({ amount: 1, currency: 'XOF', country: 'SN' }));
    assert.ok(performance.now() - started < 1500); // the failing call, then at most one timeout for the lookup
  } finally {
    held.forEach((socket) => socket.destroy());
    await new Promise((resolve) => silent.close(resolve));
  }
});

test('reports are kept while the registry answers 503 and sent later', async () => {
  registry.add('400', [{ op: 'fill_required_fields', fields: { country: 'SN' } }], [{ op: 'clear_filled_fields' }]);
  registry.reportsStatus = 503;
  const client = makeClient();
  await client.createPayment({ amount: 100, currency: 'XOF' });
  await waitUntil(() => registry.reportPosts >= 2, { what: 'two report posts' });
  assert.equal(client.pendingReports, 1);
  assert.deepEqual(registry.reports, []);
  registry.reportsStatus = 202;
  assert.equal(await client.flushReports(), true);
  assert.deepEqual(registry.reports.map((report) => report.success), [true]);
  assert.equal(client.pendingReports, 0);
});

test('reports never wait on the caller\'s path', async () => {
  registry.add('400', [{ op: 'fill_required_fields', fields: { country: 'SN' } }], null);
  let open;
  registry.reportsGate = new Promise((resolve) => { open = resolve; }); // the registry takes reports when told
  const client = makeClient();
  const started = performance.now();
  await client.createPayment({ amount: 100, currency: 'XOF' });
  await client.createPayment({ amount: 100, currency: 'XOF', country: 'CI' });
  assert.ok(performance.now() - started < 1000);
  await waitUntil(() => registry.reportPosts === 1, { what: 'the report post' }); // stuck in the post, not the caller
  open();
  await waitUntil(() => registry.reports.length === 1, { what: 'the report' });
});

test('a throwing or rejecting callback does not fail a healed call', async () => {
  registry.add('400', [{ op: 'fill_required_fields', fields: { country: 'SN' } }], null);
  assert.equal((await makeClient({ onPatchApplied: () => { throw new Error('boom'); } })
    .createPayment({ amount: 100, currency: 'XOF' })).country, 'SN');
  assert.equal((await makeClient({ onPatchApplied: async () => { throw new Error('boom'); } })
    .createPayment({ amount: 100, currency: 'XOF' })).country, 'SN');
  await waitUntil(() => /onPatchApplied threw/.test(logger.text()) && /onPatchApplied rejected/.test(logger.text()),
    { what: 'both logged' });
});

test('without self-healing errors are raised and the registry is not asked', async () => {
  await payments.behave({ revoked_keys: ['pk_primary'] });
  registry.add('401', FALLBACK, PRIMARY);
  await rejects(makeClient({ enableSelfHealing: false }).createPayment({ amount: 1, currency: 'XOF', country: 'SN' }));
  // Nothing of self-healing configured (the runbook's example): off, with a warning.
  const unpinned = makeClient({ selfhealToken: null, trustedKeys: null });
  assert.equal(unpinned.selfHealing, false);
  assert.match(logger.text(), /self-healing disabled/);
  await rejects(unpinned.createPayment({ amount: 1, currency: 'XOF', country: 'SN' }));
  assert.deepEqual(registry.lookups, []);
});

test('errors that are not healable skip the registry', async () => {
  const error = await rejects(makeClient().getPayment('pay_missing'));
  assert.equal(error.status, 404);
  assert.deepEqual(registry.lookups, []);
});

test('payment, lookup and refund round trip, signed as the Python server checks', async () => {
  const client = makeClient();
  const payment = await client.createPayment({ amount: 5000, currency: 'XOF', country: 'SN', description: 'commande 42 é' });
  assert.deepEqual(await client.getPayment(payment.id), payment);
  assert.equal((await client.refund(payment.id, { amount: 1000 })).amount, 1000);
  const { requests } = await payments.state();
  const first = requests[0].headers;
  assert.match(first['molam-signature'], /^v1=[0-9a-f]{64}$/);
  assert.match(first['idempotency-key'], /^[0-9a-f-]{36}$/);
  assert.equal(first['user-agent'], 'molam-node/0.1.0');
});

test('a timed-out call without a patch rejects with MolamTimeout', async () => {
  await payments.behave({ slow_seconds: 0.5 });
  const error = await rejects(makeClient({ timeout: 200 }).createPayment({ amount: 1, currency: 'XOF', country: 'SN' }));
  assert.ok(error instanceof MolamTimeout);
  assert.equal(registry.lookups[0].code, 'ETIMEDOUT');
  await waitUntil(async () => (await payments.state()).finished === 1, { what: 'the slow request finished' });
});

async function closedPort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port; // bound, now closed: connections are refused
}

// --- A switched-off or expired patch is never applied (issue 14, point 4) -------------------------

const CURRENCY = [{ op: 'set', setting: 'default_currency', value: 'XOF' }];
const DAY_MS = 86400 * 1000;

for (const how of ['429', '503', 'timeout']) {
  test(`a registry kept unreachable (${how}) does not keep an expired patch alive`, async () => {
    await payments.behave({ clock_tolerance: 11 * 86400 }); // the client's clock runs ahead; HMAC must still pass
    registry.add('invalid_currency', CURRENCY, null, { ttl: 300 });
    let later = 0;
    const client = makeClient({ clock: () => Date.now() + later, timeout: 500 });
    await client.createPayment({ amount: 1, currency: 'XYZ', country: 'SN' }); // served, verified, cached
    let release = () => {};
    if (how === 'timeout') registry.lookupGate = new Promise((resolve) => { release = resolve; });
    else registry.lookupStatus = Number(how);
    try {
      later = 240 * 1000; // within the envelope's 300 s: the last verified patch stands in
      assert.equal((await client.createPayment({ amount: 2, currency: 'XYZ', country: 'SN' })).currency, 'XOF');
      assert.equal(applied.length, 2);
      later = 10 * DAY_MS; // ten days after expires_at, the registry still blocked
      const error = await rejects(client.createPayment({ amount: 3, currency: 'XYZ', country: 'SN' }));
      assert.equal(error.code, 'invalid_currency');
      assert.equal(applied.length, 2);
      assert.match(logger.text(), /last verified patch dropped: patch p-invalid_currency envelope expired at/);
    } finally {
      release();
    }
  });
}

for (const [name, options, reason] of [
  ['issued in the future', { now: Date.now() + 6 * 60 * 1000 }, 'is more than 300 s ahead of this clock'],
  ['lifetime above a day', { ttl: 86401 }, 'lifetime of 86401 s is above the 86400 s maximum'],
  ['lifetime of a year', { ttl: 365 * 86400 }, 'above the 86400 s maximum'],
]) {
  test(`an envelope the registry would not issue is refused: ${name}`, async () => {
    registry.add('invalid_currency', CURRENCY, null, options);
    await rejects(makeClient().createPayment({ amount: 1, currency: 'XYZ', country: 'SN' }));
    assert.deepEqual(applied, []);
    await waitUntil(() => registry.reports.length === 1, { what: 'the refusal reported' });
    assert.equal(registry.reports[0].patch_applied, false);
    assert.ok(registry.reports[0].context.reason.includes(reason), registry.reports[0].context.reason);
  });
}

test('an envelope issued within the clock skew is accepted', async () => {
  registry.add('invalid_currency', CURRENCY, null, { now: Date.now() + 4 * 60 * 1000 });
  assert.equal((await makeClient().createPayment({ amount: 1, currency: 'XYZ', country: 'SN' })).currency, 'XOF');
});

test('a kill switch drops the patch for every error it was cached for', async () => {
  // One patch served for two errors; the registry's "no patch" for one of them stops it for both.
  registry.add('invalid_currency', CURRENCY, null, { patchId: 'p-shared' });
  registry.add('429', CURRENCY, null, { patchId: 'p-shared' });
  const client = makeClient();
  await client.createPayment({ amount: 1, currency: 'XYZ', country: 'SN' });
  await payments.behave({ rate_limited_requests: 1 });
  await client.createPayment({ amount: 2, currency: 'XOF', country: 'SN' }); // 429 healed by the same patch
  assert.deepEqual(applied.map((patch) => patch.id), ['p-shared', 'p-shared']);
  registry.patches.clear(); // switched off: the registry answers 404
  await rejects(client.createPayment({ amount: 3, currency: 'XYZ', country: 'SN' }));
  registry.lookupStatus = 503; // then blocked
  await payments.behave({ rate_limited_requests: 1 });
  const error = await rejects(client.createPayment({ amount: 4, currency: 'XOF', country: 'SN' }));
  assert.equal(error.status, 429);
  assert.equal(applied.length, 2);
});

test('a kill switch drops every bootstrap patch matching the error', async () => {
  // The file holds a patch by code and a less specific one by status: "no patch" ends both.
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'molam-kill-'));
  try {
    const file = path.join(directory, 'bootstrap.json');
    fs.writeFileSync(file, JSON.stringify([
      seal(payloadFor('p-file-code', 'invalid_currency', CURRENCY, null), CURRENT),
      seal(payloadFor('p-file-status', '400', CURRENCY, null), CURRENT)]));
    const client = makeClient({ bootstrapEnvelopes: file });
    await rejects(client.createPayment({ amount: 1, currency: 'XYZ', country: 'SN' })); // the registry: no patch
    registry.lookupStatus = 503;
    const error = await rejects(client.createPayment({ amount: 2, currency: 'XYZ', country: 'SN' }));
    assert.equal(error.code, 'invalid_currency');
    assert.deepEqual(client.getPatchHistory(), []);
  } finally {
    fs.rmSync(directory, { recursive: true, force: true });
  }
});
