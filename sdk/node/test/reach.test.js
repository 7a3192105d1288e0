'use strict';
// What a signed patch cannot reach, end to end: the local payments server (real HTTP), the
// registry stub serving envelopes signed in the test, and a process environment holding other
// secrets. The same cases as the Python SDK's tests/sdk/test_patch_reach.py.

const assert = require('node:assert/strict');
const { after, afterEach, before, beforeEach, test } = require('node:test');

const { ApiError, ConfigurationError, MolamClient } = require('..');
const { HttpTransport } = require('../src/transport');
const { TRUSTED } = require('./support/keys');
const { RegistryStub, TOKEN } = require('./support/registry-stub');
const { PaymentsServer, recordingLogger, waitUntil } = require('./support/world');

const SECRETS = {
  AWS_SECRET_ACCESS_KEY: 'aws-secret-value-0001',
  NPM_TOKEN: 'npm-token-value-0002',
  MOLAM_SELFHEAL_TOKEN: TOKEN,
  MOLAM_SECRET_KEY: 'sk_test_secret',
};
const DEFAULT_RULE = 'names starting MOLAM_, except MOLAM_SELFHEAL_* and MOLAM_SECRET_KEY';

let payments;
let registry;
let clients;
let sent; // every request the SDK sent to the payments API: {path, headers, body}
const savedEnvironment = { ...process.env };

before(async () => { payments = await PaymentsServer.start(); });
after(async () => { await payments.stop(); });

beforeEach(async () => {
  await payments.reset();
  registry = await new RegistryStub().start();
  clients = [];
  sent = [];
});

afterEach(async () => {
  await Promise.all(clients.map((client) => client.close()));
  await registry.stop();
  for (const name of Object.keys(process.env)) if (!(name in savedEnvironment)) delete process.env[name];
  Object.assign(process.env, savedEnvironment);
});

/** HTTP as the SDK does it, keeping what went to the payments API. */
function recordingTransport() {
  const http = new HttpTransport({ env: {} });
  return {
    async exchange(url, options) {
      if (url.startsWith(payments.url)) {
        sent.push({ path: new URL(url).pathname, headers: options.headers,
          body: options.body ? JSON.parse(options.body.toString('utf8')) : null });
      }
      return http.exchange(url, options);
    },
    close() { http.close(); },
  };
}

function makeClient(options = {}) {
  const client = new MolamClient({
    apiKey: 'pk_primary', secretKey: payments.secretKey, baseUrl: payments.url, timeout: 2000,
    selfhealUrl: registry.url, selfhealToken: TOKEN, trustedKeys: TRUSTED,
    fallbackCredentials: { MOLAM_FALLBACK_API_KEY: 'pk_fallback' }, reportInterval: 50,
    logger: recordingLogger(), transport: recordingTransport(), ...options,
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

const authorizations = () => new Set(sent.map((request) => request.headers.Authorization));

for (const name of Object.keys(SECRETS).sort()) {
  test(`a patch cannot send ${name} as the API key`, async () => {
    Object.assign(process.env, SECRETS, { MOLAM_FALLBACK_API_KEY: 'pk_fallback' });
    await payments.behave({ revoked_keys: ['pk_primary'] });
    const patchId = registry.add('401', [{ op: 'use_fallback_credential', name }], [{ op: 'use_primary_credential' }]);
    const client = makeClient({ fallbackCredentials: null }); // the default: environment variables by the MOLAM_ rule
    const error = await rejects(client.createPayment({ amount: 5000, currency: 'XOF', country: 'SN' }));
    assert.ok(error instanceof ApiError);
    assert.equal(error.status, 401); // the caller's own error, as without a patch
    assert.deepEqual(authorizations(), new Set(['Bearer pk_primary']));
    assert.equal(client.credential, null);
    assert.deepEqual(client.getPatchHistory(), []);
    await waitUntil(() => registry.reports.length === 1, { what: 'the refusal reported' });
    const [report] = registry.reports;
    assert.deepEqual([report.patch_id, report.patch_applied, report.success], [patchId, false, false]);
    assert.equal(report.context.reason, `operations[0] (use_fallback_credential): ${name} is not a fallback `
      + `credential this client allows (${DEFAULT_RULE})`);
  });
}

test('the default rule reads the fallback key from the environment', async () => {
  process.env.MOLAM_FALLBACK_API_KEY = 'pk_fallback';
  await payments.behave({ revoked_keys: ['pk_primary'] });
  registry.add('401', [{ op: 'use_fallback_credential', name: 'MOLAM_FALLBACK_API_KEY' }], null);
  const client = makeClient({ fallbackCredentials: null });
  assert.equal((await client.createPayment({ amount: 1, currency: 'XOF', country: 'SN' })).status, 'succeeded');
  assert.equal(sent.at(-1).headers.Authorization, 'Bearer pk_fallback');
});

test('a configured list narrows the names', async () => {
  process.env.MOLAM_FALLBACK_API_KEY = 'pk_fallback';
  await payments.behave({ revoked_keys: ['pk_primary'] });
  registry.add('401', [{ op: 'use_fallback_credential', name: 'MOLAM_FALLBACK_API_KEY' }], null);
  const client = makeClient({ fallbackCredentials: ['MOLAM_BACKUP_*'] });
  assert.ok(await rejects(client.createPayment({ amount: 1, currency: 'XOF', country: 'SN' })) instanceof ApiError);
  assert.deepEqual(authorizations(), new Set(['Bearer pk_primary']));
  await waitUntil(() => registry.reports.length === 1, { what: 'the refusal reported' });
  assert.ok(registry.reports[0].context.reason.endsWith('MOLAM_FALLBACK_API_KEY is not a fallback credential this '
    + 'client allows (fallback credentials: MOLAM_BACKUP_*)'));
});

test('the option refuses the SDK\'s own token', () => {
  assert.throws(() => makeClient({ fallbackCredentials: { MOLAM_SELFHEAL_TOKEN: TOKEN } }), (error) => {
    assert.ok(error instanceof ConfigurationError);
    assert.deepEqual([error.option, error.reason], ['fallbackCredentials',
      'MOLAM_SELFHEAL_TOKEN is the SDK\'s own setting or signing secret, never a fallback credential']);
    return true;
  });
});

const bodies = (path) => sent.filter((request) => request.path === path).map((request) => request.body);

test('filled fields go into the retried call only', async () => {
  registry.add('400', [{ op: 'fill_required_fields', fields: { country: 'SN', currency: 'XOF' } }], null);
  const client = makeClient();
  const payment = await client.createPayment({ amount: 100, currency: 'EUR' });
  assert.deepEqual([payment.country, payment.currency], ['SN', 'EUR']); // the caller's currency wins
  // The next call is sent as the caller wrote it: it fails and heals again on its own.
  await client.createPayment({ amount: 200, currency: 'EUR' });
  await client.refund(payment.id, { amount: 50 });
  assert.deepEqual(bodies('/v1/payments').map((body) => body.country), [undefined, 'SN', undefined, 'SN']);
  assert.deepEqual(bodies('/v1/refunds'), [{ payment_id: payment.id, amount: 50 }]);
  assert.equal(registry.lookups.length, 2);
});

for (const [fields, reason] of [
  [{ country: 'SN', callback_url: 'https://api.molam.com/callback' },
    'field callback_url is not one a patch may fill (only: currency, country)'],
  [{ country: 'SN', receipt_email: 'attacker@example.com' },
    'field receipt_email is not one a patch may fill (only: currency, country)'],
  [{ country: 'Senegal' }, 'field country: must be an ISO 3166-1 alpha-2 country code'],
]) {
  test(`a patch filling ${JSON.stringify(fields)} is refused and reported`, async () => {
    const patchId = registry.add('400', [{ op: 'fill_required_fields', fields }], null);
    const client = makeClient();
    const error = await rejects(client.createPayment({ amount: 100, currency: 'XOF' }));
    assert.equal(error.code, 'missing_required_field');
    assert.deepEqual(bodies('/v1/payments'), [{ amount: 100, currency: 'XOF' }]); // no retry was sent
    await waitUntil(() => registry.reports.length === 1, { what: 'the refusal reported' });
    assert.equal(registry.reports[0].patch_id, patchId);
    assert.equal(registry.reports[0].context.reason, `operations[0] (fill_required_fields): ${reason}`);
  });
}
