'use strict';
// bootstrapEnvelopes: a client starts with the signed patches of a file and heals without
// reaching the registry; the file's envelopes are verified like served ones, and the bad ones
// are skipped with a logged reason (the shared file: tests/vectors/bootstrap.json).

const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { after, afterEach, before, beforeEach, test } = require('node:test');

const { ApiError, ConfigurationError, MolamClient } = require('..');
const { loadBootstrap } = require('../src/bootstrap');
const { ReplayGuard, TrustedKeys } = require('../src/envelope');
const { CURRENT, TRUSTED, UNKNOWN, payloadFor, seal } = require('./support/keys');
const { RegistryStub, TOKEN } = require('./support/registry-stub');
const { PaymentsServer, recordingLogger, vectors } = require('./support/world');

const BOOTSTRAP = vectors('bootstrap.json');
const FALLBACK = [{ op: 'use_fallback_credential', name: 'MOLAM_FALLBACK_API_KEY' }];
const PRIMARY = [{ op: 'use_primary_credential' }];

let payments;
let registry;
let directory;
let logger;
let clients;

before(async () => { payments = await PaymentsServer.start(); });
after(async () => { await payments.stop(); });

beforeEach(async () => {
  await payments.reset();
  registry = await new RegistryStub().start();
  directory = fs.mkdtempSync(path.join(os.tmpdir(), 'molam-bootstrap-'));
  logger = recordingLogger();
  clients = [];
});

afterEach(async () => {
  await Promise.all(clients.map((client) => client.close()));
  await registry.stop();
  fs.rmSync(directory, { recursive: true, force: true });
});

function write(document, name = 'bootstrap.json') {
  const file = path.join(directory, name);
  fs.writeFileSync(file, typeof document === 'string' ? document : JSON.stringify(document));
  return file;
}

function makeClient(options = {}) {
  const client = new MolamClient({
    apiKey: 'pk_primary', secretKey: payments.secretKey, baseUrl: payments.url, timeout: 2000, trustedKeys: TRUSTED,
    fallbackCredentials: { MOLAM_FALLBACK_API_KEY: 'pk_fallback' }, reportInterval: 50, logger, ...options,
  });
  clients.push(client);
  return client;
}

async function closedPortUrl() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}`; // nobody listens there now: refused
}

const pay = (client, fields = {}) => client.createPayment({ amount: 5000, currency: 'XOF', country: 'SN', ...fields });

test('bootstrap vector: what a client keeps from the shared file', () => {
  const file = write(BOOTSTRAP.file);
  const loaded = loadBootstrap(file, { trusted: new TrustedKeys(BOOTSTRAP.trusted), replay: new ReplayGuard(),
    now: Date.parse(BOOTSTRAP.now), logger });
  const expect = BOOTSTRAP.expect.node;
  assert.deepEqual(loaded.patches.map((patch) => patch.id), expect.patches);
  assert.deepEqual(loaded.skipped.map((reason) => Number(/^entry (\d+):/.exec(reason)[1])),
    expect.skipped.map(([index]) => index));
  expect.skipped.forEach(([index, part], i) => {
    assert.ok(loaded.skipped[i].includes(part), `${index}: ${loaded.skipped[i]}`);
    // Each skip is logged with the file and the entry: an operator finds the bad envelope.
    assert.ok(logger.lines.some(([level, line]) => level === 'warn'
      && line.startsWith(`Molam SDK: bootstrapEnvelopes ${file}: entry ${index} skipped: `)), `entry ${index}`);
  });
});

test('a client starts healed from the file without any registry', async () => {
  await payments.behave({ revoked_keys: ['pk_primary'] });
  const file = write([seal(payloadFor('p-401', '401', FALLBACK, PRIMARY,
    { description: 'Injection clé API fallback sur 401' }), CURRENT)]);
  const applied = [];
  const client = makeClient({ bootstrapEnvelopes: file, onPatchApplied: (patch) => applied.push(patch) });
  assert.equal(client.selfHealing, true);
  assert.equal((await pay(client)).status, 'succeeded');
  assert.deepEqual(client.getPatchHistory().map((patch) => [patch.id, patch.success]), [['p-401', true]]);
  assert.deepEqual(applied, client.getPatchHistory());
  assert.equal(client.pendingReports, 0); // no registry: nothing to report
});

test('the file stands in while the registry is unreachable', async () => {
  await payments.behave({ revoked_keys: ['pk_primary'] });
  const file = write({ envelopes: [{ patch: { id: 'p-401' },
    envelope: seal(payloadFor('p-401', '401', FALLBACK, PRIMARY), CURRENT) }] });
  const client = makeClient({ bootstrapEnvelopes: file, selfhealUrl: await closedPortUrl(), selfhealToken: TOKEN });
  assert.equal((await pay(client)).status, 'succeeded');
  assert.equal(client.credential, 'MOLAM_FALLBACK_API_KEY');
  assert.match(logger.text(), /self-heal registry unreachable .*; using bootstrap patch p-401/);
});

test('a reachable registry wins over the file', async () => {
  await payments.behave({ revoked_keys: ['pk_primary'] });
  const file = write([seal(payloadFor('p-401', '401', FALLBACK, PRIMARY), CURRENT)]);
  const client = makeClient({ bootstrapEnvelopes: file, selfhealUrl: registry.url, selfhealToken: TOKEN });
  // The registry has no patch for this error any more (switched off since the file was written)...
  await assert.rejects(pay(client), ApiError);
  assert.equal(registry.lookups.length, 1);
  assert.deepEqual(client.getPatchHistory(), []);
  assert.ok(logger.lines.some(([level, line]) => level === 'warn' && line.endsWith(
    'the registry has no patch for 401 Unauthorized: api_key_revoked: bootstrap patch p-401 dropped')));
  // ...and the file's patch stays dropped when the registry is away afterwards.
  registry.lookupStatus = 503;
  await assert.rejects(pay(client), ApiError);
});

test('a served patch is used before the file', async () => {
  const file = write([seal(payloadFor('p-file', 'invalid_currency',
    [{ op: 'set', setting: 'default_currency', value: 'EUR' }], null), CURRENT)]);
  registry.add('invalid_currency', [{ op: 'set', setting: 'default_currency', value: 'XOF' }]);
  const client = makeClient({ bootstrapEnvelopes: file, selfhealUrl: registry.url, selfhealToken: TOKEN });
  assert.equal((await pay(client, { currency: 'XYZ' })).currency, 'XOF');
  assert.deepEqual(client.getPatchHistory().map((patch) => patch.id), ['p-invalid_currency']);
});

test('bad envelopes are skipped and the client starts with the good ones', async () => {
  await payments.behave({ revoked_keys: ['pk_primary'] });
  const good = seal(payloadFor('p-401', '401', FALLBACK, PRIMARY), CURRENT);
  const file = write([
    { ...good, signatures: [] }, // unsigned
    seal(payloadFor('p-unknown', '401', FALLBACK, PRIMARY), UNKNOWN), // signed by a key nobody pinned
    seal(payloadFor('p-expired', '401', FALLBACK, PRIMARY, { ttl: -1 }), CURRENT),
    good,
  ]);
  const client = makeClient({ bootstrapEnvelopes: file });
  const text = logger.text();
  assert.ok(text.includes(`bootstrapEnvelopes ${file}: entry 0 skipped: an envelope carries 1 to 4 signatures`));
  assert.ok(text.includes(`bootstrapEnvelopes ${file}: entry 1 skipped: no valid signature from a trusted key`));
  assert.ok(text.includes(`bootstrapEnvelopes ${file}: entry 2 skipped: patch p-expired envelope expired at`));
  assert.equal((await pay(client)).status, 'succeeded');
  assert.deepEqual(client.getPatchHistory().map((patch) => patch.id), ['p-401']);
});

test('a bootstrap patch is not used once its envelope expired', async () => {
  await payments.behave({ revoked_keys: ['pk_primary'], clock_tolerance: 10000 }); // signatures stay valid
  const file = write([seal(payloadFor('p-401', '401', FALLBACK, PRIMARY, { ttl: 300 }), CURRENT)]);
  let offset = 0;
  const client = makeClient({ bootstrapEnvelopes: file, clock: () => Date.now() + offset });
  offset = 301000;
  await assert.rejects(pay(client), ApiError);
  assert.match(logger.text(), /bootstrap patch p-401 expired at/);
  assert.deepEqual(client.getPatchHistory(), []);
});

for (const [name, content, reason] of [
  ['not_json', '{not json', 'is not JSON: '],
  ['no_envelopes', '{"patches": []}', 'must hold a list of envelopes, or an object with an "envelopes" list'],
  ['envelopes_not_a_list', '{"envelopes": {}}', 'must hold a list of envelopes, or an object with an "envelopes" list'],
  ['a_number', '42', 'must hold a list of envelopes, or an object with an "envelopes" list'],
]) {
  test(`a file that is not a bootstrap file is a configuration error: ${name}`, () => {
    const file = write(content);
    assert.throws(() => makeClient({ bootstrapEnvelopes: file }), (error) => error instanceof ConfigurationError
      && error.option === 'bootstrapEnvelopes' && error.reason.startsWith(`${file} ${reason}`));
  });
}

test('an unreadable file, or a path that is not one, is a configuration error', () => {
  assert.throws(() => makeClient({ bootstrapEnvelopes: directory }),
    { message: `bootstrapEnvelopes: cannot read ${directory}: Is a directory` });
  assert.throws(() => makeClient({ bootstrapEnvelopes: 42 }), { message: 'bootstrapEnvelopes: must be a file path' });
});

test('the file sets the replay floor for served envelopes', async () => {
  const file = write([seal(payloadFor('p-currency', 'invalid_currency',
    [{ op: 'set', setting: 'default_currency', value: 'XOF' }], null, { sequence: 9 }), CURRENT)]);
  registry.add('invalid_currency', [{ op: 'set', setting: 'default_currency', value: 'EUR' }], null,
    { patchId: 'p-currency', sequence: 8 });
  const client = makeClient({ bootstrapEnvelopes: file, selfhealUrl: registry.url, selfhealToken: TOKEN });
  await assert.rejects(pay(client, { currency: 'XYZ' }), ApiError);
  assert.equal(client.defaultCurrency, null);
});
