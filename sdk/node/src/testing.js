'use strict';
// @molam/sdk/testing: a test double for applications — the real MolamClient, healed by a fake
// registry, against a fake payments API, all in memory (no network, no server, no waiting on
// timeouts). The same double as the Python SDK's molam.testing.
//
//   (FakeMolam from @molam/sdk/testing)
//   const fake = new FakeMolam();
//   fake.payments.fail({ status: 401, code: 'api_key_revoked', when: (request) => request.apiKey === 'pk_test' });
//   fake.registry.addPatch('401', [{ op: 'use_fallback_credential', name: 'MOLAM_FALLBACK_API_KEY' }],
//     { rollback: [{ op: 'use_primary_credential' }] });
//   const client = fake.client({ apiKey: 'pk_test', fallbackCredentials: { MOLAM_FALLBACK_API_KEY: 'pk_fallback' } });
//   await yourCode(client);
//   client.getPatchHistory()[0].success;  (await fake.reports())[0].success;  await fake.close();
//
// Patches are declared as compiled operations, the registry's own shape (`selfheal compile`
// prints them). The fake registry signs them with a key of its own, which fake.client() pins, so
// the client verifies, applies, retries, rolls back and reports exactly as in production; the
// fake chooses the patch for an error by the registry's matching rules.

const crypto = require('node:crypto');
const http = require('node:http');

const { MolamClient } = require('./client');
const { ENVELOPE_FORMAT, LANGUAGE, keyId } = require('./envelope');
const { MolamConnectionError, MolamTimeout, PatchRefused } = require('./errors');
const { bestMatch } = require('./matching');
const { documentOperations } = require('./operations');

const SELFHEAL_URL = 'https://selfheal.molam.invalid'; // never resolved: the fake transport answers for it
const TOKEN = 'fake-selfheal-token';

const isObject = (value) => value !== null && typeof value === 'object' && !Array.isArray(value);

/** A request the fake payments API received. */
class FakeRequest {
  constructor({ method, url, host, path, headers, json }) {
    Object.assign(this, { method, url, host, path, headers, json });
    Object.freeze(this);
  }

  get apiKey() {
    const value = this.headers.authorization || '';
    return value.startsWith('Bearer ') ? value.slice('Bearer '.length) : null;
  }
}

/** The payments API: every call succeeds unless a failure declared with fail() applies. */
class FakePayments {
  constructor() {
    this.requests = [];
    this.payments = new Map();
    this.failures = [];
    this.idempotent = new Map();
    this.ids = 0;
  }

  /**
   * Fail the requests `when` selects (all by default), `times` times (always by default): with
   * an error answer ({status, code, message, retryAfter for 429, field for 400}), a timeout
   * ({timeout: true}) or an unreachable host ({unreachable: true}). The first declared failure
   * that applies wins. Returns the failure; its `hits` counts the requests it failed.
   */
  fail({ status = null, code = null, message = null, timeout = false, unreachable = false, when = null, times = null,
    retryAfter = null, field = null } = {}) {
    if ([status !== null, timeout, unreachable].filter(Boolean).length !== 1) {
      throw new TypeError('fail(): give exactly one of status, timeout: true or unreachable: true');
    }
    if (status !== null && !(Number.isInteger(status) && status >= 400 && status <= 599)) {
      throw new TypeError(`fail(): status must be an HTTP error status (400-599), got ${JSON.stringify(status)}`);
    }
    if (times !== null && !(times >= 1)) throw new TypeError('fail(): times must be at least 1');
    const failure = { status, code, message: message || 'failure declared by the test', timeout, unreachable, when,
      times, retryAfter, field, hits: 0 };
    this.failures.push(failure);
    return failure;
  }

  clearFailures() {
    this.failures.length = 0;
  }

  /** Resolves [status, document, extraHeaders]; rejects as the real transport does for timeouts and refusals. */
  async handle(request) {
    this.requests.push(request);
    const failure = this.failures.find((f) => (f.times === null || f.hits < f.times) && (f.when === null
      || Boolean(f.when(request))));
    if (failure !== undefined) {
      failure.hits += 1;
      if (failure.timeout) {
        throw new MolamTimeout(`no complete answer from ${request.host} (a timeout declared by the test)`);
      }
      if (failure.unreachable) {
        throw new MolamConnectionError(`${request.host}: connect ECONNREFUSED (declared by the test)`, 'ECONNREFUSED');
      }
      const detail = { message: failure.message };
      if (failure.code) detail.error = failure.code;
      if (failure.field) detail.field = failure.field;
      return [failure.status, detail, failure.retryAfter === null ? {} : { 'retry-after': String(failure.retryAfter) }];
    }
    return this.serve(request);
  }

  serve(request) {
    const body = isObject(request.json) ? request.json : {};
    const key = request.headers['idempotency-key'];
    if (key && this.idempotent.has(key)) return [...this.idempotent.get(key), {}]; // a retry: the same answer
    const id = () => String((this.ids += 1)).padStart(6, '0');
    let answer;
    if (request.method === 'POST' && request.path === '/v1/payments') {
      const payment = { id: `pay_fake_${id()}`, status: 'succeeded', ...body };
      this.payments.set(payment.id, payment);
      answer = [201, payment];
    } else if (request.method === 'GET' && request.path.startsWith('/v1/payments/')) {
      const found = this.payments.get(decodeURIComponent(request.path.split('/').at(-1)));
      answer = found ? [200, found] : [404, { error: 'not_found', message: 'no such payment' }];
    } else if (request.method === 'POST' && request.path === '/v1/refunds') {
      const payment = this.payments.get(body.payment_id);
      answer = payment === undefined ? [404, { error: 'not_found', message: 'no such payment' }]
        : [201, { id: `re_fake_${id()}`, payment_id: payment.id, amount: body.amount ?? payment.amount }];
    } else {
      answer = [404, { error: 'not_found', message: `no route ${request.method} ${request.path}` }];
    }
    if (key && answer[0] < 300) this.idempotent.set(key, answer);
    return [...answer, {}];
  }
}

function documentOf(operations, what) {
  const document = isObject(operations) ? operations : { format: 'selfheal.operations', version: 1, operations };
  try {
    documentOperations(document); // the SDK's own shape check: a typo fails here, not as a silent refusal
  } catch (error) {
    if (error instanceof PatchRefused) throw new TypeError(`addPatch(): ${what}: ${error.message}`);
    throw error;
  }
  return document;
}

// Python's json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False), as the registry signs.
function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (isObject(value)) {
    return `{${Object.keys(value).sort().map((key) => `${JSON.stringify(key)}:${canonical(value[key])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

const isoSeconds = (ms) => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', '+00:00');

/** The registry API's two SDK routes: patches declared by the test, signed with its own key. */
class FakeRegistry {
  constructor({ envelopeTtl = 300 } = {}) {
    const { privateKey, publicKey } = crypto.generateKeyPairSync('ed25519');
    this.privateKey = privateKey;
    this.publicKeyPem = publicKey.export({ format: 'pem', type: 'spki' });
    this.keyId = keyId(publicKey);
    this.envelopeTtl = envelopeTtl; // seconds
    this.unavailable = false; // true: lookups answer 503, as a registry that is down
    this.lookups = [];
    this.receivedReports = [];
    this.patches = new Map();
    this.sequence = 0;
  }

  get trustedKeys() {
    return { [this.keyId]: this.publicKeyPem };
  }

  /**
   * Serve a patch for the errors its signature matches; returns its id. `operations` and
   * `rollback`: a list of operations or a whole operation document.
   */
  addPatch(errorSignature, operations, { rollback = null, description = 'test patch', severity = 'medium',
    version = '1.0.0', patchId = null } = {}) {
    if (typeof errorSignature !== 'string' || errorSignature.trim() === '') {
      throw new TypeError('addPatch(): errorSignature must be a non-empty string');
    }
    const patch = Object.freeze({
      id: patchId || `fake-${errorSignature.toLowerCase().replace(/ /g, '-')}`, errorSignature, severity,
      sequence: (this.sequence += 1), version, description, operations: documentOf(operations, 'operations'),
      rollbackOperations: rollback === null ? null : documentOf(rollback, 'rollback'),
    });
    this.patches.set(patch.id, patch);
    return patch.id;
  }

  /** Switch a patch off: the registry answers 404 for its errors from now on. */
  removePatch(patchId) {
    if (!this.patches.delete(patchId)) throw new RangeError(`removePatch(): no patch ${patchId}`);
  }

  /** The signed envelope the registry serves for a patch (e.g. to write a bootstrap file). */
  envelope(patchId, { now = Date.now() } = {}) {
    const patch = this.patches.get(patchId);
    if (patch === undefined) throw new RangeError(`envelope(): no patch ${patchId}`);
    const payload = { patch_id: patch.id, version: patch.version, sequence: patch.sequence, sdk_language: LANGUAGE,
      error_signature: patch.errorSignature, description: patch.description, severity: patch.severity,
      operations: patch.operations, rollback_operations: patch.rollbackOperations, issued_at: isoSeconds(now),
      expires_at: isoSeconds(now + this.envelopeTtl * 1000) };
    const data = Buffer.from(canonical(payload), 'utf8');
    const signature = crypto.sign(null, data, this.privateKey).toString('base64');
    return { format: ENVELOPE_FORMAT, payload: data.toString('base64'),
      signatures: [{ alg: 'Ed25519', keyId: this.keyId, signature }] };
  }

  /** Every declared patch's envelope: a bootstrap file's content (JSON.stringify it). */
  envelopes() {
    return [...this.patches.keys()].map((id) => this.envelope(id));
  }

  handle(path, headers, body) {
    if (headers.authorization !== `Bearer ${TOKEN}`) {
      return [401, { error: 'unauthorized', message: 'unknown or revoked token' }, {}];
    }
    if (path === '/api/dev/self-heal/reports') {
      this.receivedReports.push(...body.reports);
      return [202, { accepted: body.reports.length }, {}];
    }
    if (path !== '/api/dev/self-heal') return [404, { error: 'not_found', message: `no route ${path}` }, {}];
    this.lookups.push(body);
    if (this.unavailable) {
      return [503, { error: 'unavailable', message: 'the fake registry is unavailable' }, { 'retry-after': '1' }];
    }
    const found = bestMatch(this.patches.values(), { message: body.error, status: body.status ?? null,
      code: body.code ?? null });
    if (found === null) return [404, { error: 'no_patch', message: 'no active patch for this error' }, {}];
    const { patch, kind } = found;
    return [200, { patch: { id: patch.id, version: patch.version, description: patch.description,
      severity: patch.severity, matched_by: kind }, envelope: this.envelope(patch.id),
    // The real registry's receipt is an HMAC for the token; the SDK only sends it back.
    receipt: `fake-receipt-${patch.id}` }, {}];
  }
}

/** Routes the client's requests: the fake registry's URL to it, everything else to the fake payments API. */
class FakeTransport {
  constructor(payments, registry) {
    this.payments = payments;
    this.registry = registry;
  }

  async exchange(url, { method, headers, body = null }) {
    const parts = new URL(url);
    const lower = Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value]));
    const document = body === null || body.length === 0 ? null : JSON.parse(body.toString('utf8'));
    const [status, answer, extra] = url.startsWith(`${SELFHEAL_URL}/`)
      ? this.registry.handle(parts.pathname, lower, document)
      : await this.payments.handle(new FakeRequest({ method, url, host: parts.hostname, path: parts.pathname,
        headers: lower, json: document }));
    return { status, reason: http.STATUS_CODES[status] || '',
      headers: { 'content-type': 'application/json', date: new Date().toUTCString(), ...extra },
      body: Buffer.from(JSON.stringify(answer), 'utf8') };
  }

  close() {}
}

/** A fake payments API and a fake registry, and clients wired to both. */
class FakeMolam {
  constructor({ envelopeTtl = 300 } = {}) {
    this.payments = new FakePayments();
    this.registry = new FakeRegistry({ envelopeTtl });
    this.transport = new FakeTransport(this.payments, this.registry);
    this.clients = [];
  }

  /** A MolamClient healed by the fake registry; any MolamClient option may be given. */
  client(options = {}) {
    const client = new MolamClient({
      apiKey: 'pk_test_fake', secretKey: 'sk_test_fake', selfhealUrl: SELFHEAL_URL, selfhealToken: TOKEN,
      trustedKeys: this.registry.trustedKeys, reportInterval: 3600000, // reports are delivered by reports()
      ...options, transport: this.transport,
    });
    this.clients.push(client);
    return client;
  }

  /** Every outcome report the clients made so far, as the registry received them. */
  async reports() {
    for (const client of this.clients) await client.flushReports();
    return [...this.registry.receivedReports];
  }

  async close() {
    await Promise.all(this.clients.map((client) => client.close()));
  }
}

module.exports = { FakeMolam, FakePayments, FakeRegistry, FakeRequest, FakeTransport, SELFHEAL_URL };
