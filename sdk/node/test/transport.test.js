'use strict';
// Connections kept alive (counted on real local servers) and proxies honoured (a real local
// forward proxy, tests/sdk/proxy_server.py, sees the requests), plus the proxy choice itself
// (tests/vectors/proxy.json, which the Python SDK's tests read too).

const assert = require('node:assert/strict');
const { execFile, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { after, afterEach, before, test } = require('node:test');
const { promisify } = require('node:util');

const { ConfigurationError, MolamClient, MolamConnectionError } = require('..');
const { proxiesFromEnvironment, proxyFor } = require('../src/transport');
const { CountingServer } = require('./support/counting-server');
const { TRUSTED } = require('./support/keys');
const { RegistryStub, TOKEN } = require('./support/registry-stub');
const { ROOT, ProxyProcess, python, recordingLogger, vectors } = require('./support/world');

const run = promisify(execFile);
const PROXY = vectors('proxy.json');
const PACKAGE = path.resolve(__dirname, '..');

for (const testCase of PROXY.cases) {
  test(`proxy vector: ${testCase.name}`, () => {
    const url = new URL(testCase.url);
    const proxies = proxiesFromEnvironment(testCase.environment);
    assert.equal(proxyFor(url.protocol.slice(0, -1), url.hostname, url.port, proxies), testCase.expect);
  });
}

let tls; // {cert, key} of a self-signed certificate for 127.0.0.1, and the file clients trust it from
let directory;
const stops = [];

before(() => {
  directory = fs.mkdtempSync(path.join(os.tmpdir(), 'molam-transport-'));
  execFileSync(python(), ['-m', 'tests.sdk.tls', directory], { cwd: ROOT });
  const caFile = path.join(directory, 'cert.pem');
  tls = { cert: fs.readFileSync(caFile), key: fs.readFileSync(path.join(directory, 'key.pem')), caFile };
});

after(() => fs.rmSync(directory, { recursive: true, force: true }));

afterEach(async () => {
  for (const name of ['HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY']) delete process.env[name];
  while (stops.length > 0) await stops.pop()();
});

async function started(server) {
  await server.start();
  stops.push(() => server.stop());
  return server;
}

function client(options) {
  const made = new MolamClient({ apiKey: 'pk_primary', secretKey: 'sk_test_secret', timeout: 3000,
    logger: recordingLogger(), ...options });
  stops.push(() => made.close());
  return made;
}

test('calls reuse one connection per host, the registry\'s included', async () => {
  const payments = await started(new CountingServer());
  const registry = await started(new RegistryStub());
  registry.add('invalid_currency', [{ op: 'set', setting: 'default_currency', value: 'XOF' }]);
  const sdk = client({ baseUrl: payments.url, selfhealUrl: registry.url, selfhealToken: TOKEN, trustedKeys: TRUSTED,
    reportInterval: 3600000 });
  for (let i = 0; i < 5; i += 1) await sdk.createPayment({ amount: 100, currency: 'XOF', country: 'SN' });
  await sdk.createPayment({ amount: 100, currency: 'XYZ', country: 'SN' }); // healed: a lookup, then the retry
  await sdk.getPayment('pay_1');
  assert.equal(await sdk.flushReports(), true);
  assert.equal(payments.requests.length, 8);
  assert.equal(payments.connections, 1);
  assert.deepEqual([registry.lookups.length, registry.reports.length, registry.connections], [1, 1, 1]);
});

test('a connection the server closed is replaced, not failed', async () => {
  const payments = await started(new CountingServer({ closeConnections: true }));
  const sdk = client({ baseUrl: payments.url, enableSelfHealing: false });
  for (let i = 0; i < 3; i += 1) {
    assert.equal((await sdk.createPayment({ amount: 100, currency: 'XOF', country: 'SN' })).status, 'succeeded');
  }
  assert.equal(payments.connections, 3);
});

test('close() closes pooled connections', async () => {
  const payments = await started(new CountingServer());
  const sdk = client({ baseUrl: payments.url, enableSelfHealing: false });
  await sdk.createPayment({ amount: 100, currency: 'XOF', country: 'SN' });
  await sdk.close();
  await sdk.createPayment({ amount: 100, currency: 'XOF', country: 'SN' }); // still works, on a new connection
  assert.equal(payments.connections, 2);
});

test('HTTP_PROXY forwards http:// calls and NO_PROXY bypasses it', async () => {
  const payments = await started(new CountingServer());
  const proxy = await ProxyProcess.start();
  stops.push(() => proxy.stop());
  process.env.HTTP_PROXY = proxy.url;
  const sdk = client({ baseUrl: payments.url, enableSelfHealing: false });
  await sdk.createPayment({ amount: 100, currency: 'XOF', country: 'SN' });
  await sdk.createPayment({ amount: 100, currency: 'XOF', country: 'SN' });
  assert.deepEqual(proxy.seen.map((seen) => [seen.method, seen.target]),
    [['POST', `${payments.url}/v1/payments`], ['POST', `${payments.url}/v1/payments`]]);
  process.env.NO_PROXY = 'localhost,127.0.0.1';
  await client({ baseUrl: payments.url, enableSelfHealing: false })
    .createPayment({ amount: 100, currency: 'XOF', country: 'SN' });
  assert.equal(proxy.seen.length, 2);
  assert.equal(payments.requests.length, 3);
});

test('HTTPS_PROXY tunnels https:// calls, with proxy credentials, in one kept-alive tunnel', async () => {
  const payments = await started(new CountingServer({ tls }));
  const proxy = await ProxyProcess.start({ credentials: 'svc:s3cret' });
  stops.push(() => proxy.stop());
  // A process of its own: Node reads the extra certificate authority (the test server's) at start.
  const script = path.join(directory, 'tunnel.js');
  fs.writeFileSync(script, `const { MolamClient } = require(${JSON.stringify(PACKAGE)});
const client = new MolamClient({ apiKey: 'pk', secretKey: 'sk', baseUrl: process.env.PAYMENTS_URL,
  enableSelfHealing: false });
(async () => {
  const statuses = [];
  for (let i = 0; i < 3; i += 1) statuses.push((await client.createPayment({ amount: 1, currency: 'XOF' })).status);
  await client.close();
  console.log(statuses.join(' '));
})();
`);
  const { stdout } = await run(process.execPath, [script], { timeout: 20000, env: { ...process.env,
    PAYMENTS_URL: payments.url, NODE_EXTRA_CA_CERTS: tls.caFile,
    // user:password@host:port, without a scheme: curl's reading, an http:// proxy.
    HTTPS_PROXY: proxy.url.replace('http://', 'svc:s3cret@') } });
  assert.equal(stdout, 'succeeded succeeded succeeded\n');
  // The proxy saw the host once, never the requests inside the tunnel.
  assert.deepEqual(proxy.seen, [{ method: 'CONNECT', target: payments.url.replace('https://', ''), authorized: true }]);
  assert.deepEqual([payments.connections, payments.requests.length], [1, 3]);
});

test('a proxy refusing the credentials is a connection error', async () => {
  const proxy = await ProxyProcess.start({ credentials: 'svc:s3cret' });
  stops.push(() => proxy.stop());
  process.env.HTTPS_PROXY = proxy.url; // no credentials: 407
  const sdk = client({ baseUrl: 'https://api.molam.com', enableSelfHealing: false });
  await assert.rejects(sdk.getPayment('pay_1'), (error) => error instanceof MolamConnectionError
    && /Tunnel connection failed: 407/.test(error.message));
  assert.deepEqual(proxy.seen, [{ method: 'CONNECT', target: 'api.molam.com:443', authorized: false }]);
});

test('a proxy variable the SDK cannot use is a configuration error', () => {
  process.env.HTTPS_PROXY = 'socks5://127.0.0.1:1080';
  assert.throws(() => client({ enableSelfHealing: false }), (error) => error instanceof ConfigurationError
    && error.option === 'HTTPS_PROXY'
    && error.reason === '"socks5://127.0.0.1:1080": only http:// proxies are supported');
});
