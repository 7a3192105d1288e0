'use strict';
// MolamClient: the payments API over HTTP, healed by signed patches when a known error occurs.
//
//   const client = new MolamClient({ apiKey, secretKey, enableSelfHealing: true,
//     selfhealToken, trustedKeys: { [keyId]: publicKeyPem },
//     onPatchApplied: (patch) => console.log('Patch appliqué:', patch.description) });
//   await client.createPayment({ amount: 5000, currency: 'XOF', country: 'SN' });
//   client.getPatchHistory();
//
// Payments API (JSON; signed as described in ./signing.js), as the Python SDK calls it:
//   POST /v1/payments        createPayment({ amount, currency, ...fields })
//   GET  /v1/payments/{id}   getPayment(id)
//   POST /v1/refunds         refund(paymentId, { amount, ...fields })
// POST calls carry an Idempotency-Key shared by every attempt of the call, so a retry after a
// timeout cannot charge twice. Molam-Version carries `apiVersion` when set.

const crypto = require('node:crypto');
const { setTimeout: sleep } = require('node:timers/promises');

const signing = require('./signing');
const config = require('./config');
const { loadBootstrap } = require('./bootstrap');
const { ReplayGuard, TrustedKeys } = require('./envelope');
const { ApiError, ConfigurationError, MolamConnectionError, MolamError, MolamTimeout } = require('./errors');
const { Healer } = require('./healing');
const { RegistryClient } = require('./registry');
const { ReportQueue } = require('./reports');
const { backoffDelay, initialState, toObject } = require('./state');
const { HttpTransport } = require('./transport');

const VERSION = '0.1.0';
const USER_AGENT = `molam-node/${VERSION}`;
const DEFAULT_BASE_URL = 'https://api.molam.com';
const DEFAULT_ALLOWED_HOSTS = ['api.molam.com', 'api-backup.molam.com'];
const MAX_RESPONSE_BYTES = 1024 * 1024;

// The runbook's six corrections, plus connection errors (its ECONNREFUSED example).
const HEALABLE_STATUSES = new Set([400, 401, 429]);
const HEALABLE_CODES = new Set(['invalid_currency', 'invalid_signature']);

function healable(error) {
  if (error instanceof MolamTimeout || error instanceof MolamConnectionError) return true;
  return error instanceof ApiError && (HEALABLE_STATUSES.has(error.status) || HEALABLE_CODES.has(error.code));
}

/** One logical API call. Every attempt is built and signed afresh from the current state. */
class Call {
  constructor({ operation, method, path, route, fields = null, idempotencyKey = null, filled = {} }) {
    // filled: a patch's defaults, for this retry only.
    Object.assign(this, { operation, method, path, route, fields, idempotencyKey, filled });
    Object.freeze(this);
  }

  body(state) {
    if (this.fields === null) return null;
    // The caller's values win; then the patched default currency; then filled defaults.
    const fields = { ...this.filled };
    for (const [key, value] of Object.entries(this.fields)) if (value != null) fields[key] = value;
    if ('currency' in this.fields && this.fields.currency == null && state.default_currency) {
      fields.currency = state.default_currency;
    }
    return Buffer.from(JSON.stringify(fields), 'utf8');
  }

  withoutCurrency() {
    return new Call({ ...this, fields: { ...(this.fields || {}), currency: null } });
  }

  withFilled(filled) {
    return filled && Object.keys(filled).length > 0 ? new Call({ ...this, filled: { ...filled } }) : this;
  }
}

function hostOf(url) {
  try {
    return new URL(url).hostname;
  } catch {
    return '';
  }
}

class MolamClient {
  /**
   * Options: apiKey, secretKey (required); enableSelfHealing (true); onPatchApplied(patch);
   * baseUrl; timeout (ms, 10000); apiVersion; selfhealUrl, selfhealToken (default
   * MOLAM_SELFHEAL_URL / MOLAM_SELFHEAL_TOKEN); trustedKeys {keyId: publicKeyPem};
   * bootstrapEnvelopes (a file of signed envelopes the client starts with, ./bootstrap.js);
   * fallbackCredentials: the credentials a patch may switch the API key to, by name (default:
   * environment variables named MOLAM_…, never MOLAM_SELFHEAL_… nor MOLAM_SECRET_KEY; an array of
   * names or 'PREFIX_*' entries narrows that to these variables; {NAME: apiKey} gives names and
   * values; a patch naming anything else is refused, and reported); allowedHosts;
   * maxEnvelopeBytes (65536); reportInterval (ms, 1000); logger (console); transport (pooled
   * keep-alive HTTP through the environment's proxy; @molam/sdk/testing passes a fake); clock
   * (() => ms: signing and envelope expiry). Throws ConfigurationError, naming the option, for
   * anything it cannot use.
   */
  constructor(options = {}) {
    const {
      apiKey, secretKey, enableSelfHealing = true, onPatchApplied = null, baseUrl = DEFAULT_BASE_URL,
      timeout = 10000, apiVersion = null, selfhealUrl = null, selfhealToken = null, trustedKeys = null,
      bootstrapEnvelopes = null, fallbackCredentials = null, allowedHosts = null, maxEnvelopeBytes = 64 * 1024,
      reportInterval = 1000, logger = console, transport = null, clock = Date.now,
    } = options;
    this.#apiKey = config.credential('apiKey', apiKey);
    this.#secretKey = config.credential('secretKey', secretKey);
    if (typeof timeout !== 'number' || !(timeout > 0 && timeout <= 120000)) {
      throw new ConfigurationError('must be between 0 and 120000 milliseconds', { option: 'timeout' });
    }
    config.httpUrl('baseUrl', baseUrl);
    const trusted = new TrustedKeys(trustedKeys || {});
    this.#clock = clock;
    this.#logger = logger;
    this.#fallback = config.fallbackCredentials('fallbackCredentials', fallbackCredentials);
    this.#state = initialState({ baseUrl: String(baseUrl).replace(/\/+$/, ''), timeoutMs: Math.round(timeout),
      apiVersion });
    this.#allowedHosts = new Set(allowedHosts || [...DEFAULT_ALLOWED_HOSTS, hostOf(baseUrl)]);
    let settings = null;
    if (enableSelfHealing) {
      const environment = process.env;
      settings = config.selfHealSettings({
        token: selfhealToken || environment.MOLAM_SELFHEAL_TOKEN || null,
        tokenFromEnvironment: !selfhealToken && Boolean(environment.MOLAM_SELFHEAL_TOKEN),
        url: selfhealUrl || environment.MOLAM_SELFHEAL_URL || baseUrl,
        urlFromEnvironment: !selfhealUrl && Boolean(environment.MOLAM_SELFHEAL_URL),
        hasTrustedKeys: trusted.size > 0, bootstrap: bootstrapEnvelopes,
      });
      if (settings === null) {
        // Fail closed: without a token and pinned keys no patch could be fetched and verified.
        logger.warn('Molam SDK: self-healing disabled: it needs selfhealToken and trustedKeys');
      }
    }
    this.#transport = transport !== null ? transport : new HttpTransport();
    if (settings !== null) {
      const replay = new ReplayGuard();
      const bootstrap = bootstrapEnvelopes === null ? [] : loadBootstrap(bootstrapEnvelopes,
        { trusted, replay, now: clock(), logger }).patches;
      let registry = null;
      if (settings.url !== null && settings.token !== null) {
        registry = new RegistryClient({ url: settings.url, token: settings.token, maxEnvelopeBytes,
          userAgent: USER_AGENT, logger, transport: this.#transport });
        this.#reports = new ReportQueue((batch) => registry.sendReports(batch, { timeoutMs: 5000 }),
          { intervalMs: reportInterval, logger });
      }
      this.#healer = new Healer({ registry, trusted, reports: this.#reports, onPatchApplied, clock, logger, replay,
        bootstrap });
    }
  }

  #apiKey;
  #secretKey;
  #clock;
  #logger;
  #fallback;
  #state;
  #allowedHosts;
  #transport;
  #reports = null;
  #healer = null;

  // --- Settings a patch may change (read-only here: patches change them) ---------------------

  /** The current settings, as the shared vectors write them (a frozen snapshot). */
  get state() {
    return this.#state;
  }

  get baseUrl() { return this.#state.base_url; }

  /** Milliseconds per call. */
  get timeout() { return this.#state.timeout_ms; }

  get maxRetries() { return this.#state.max_retries; }

  get defaultCurrency() { return this.#state.default_currency; }

  get apiVersion() { return this.#state.api_version; }

  get clockSkewSeconds() { return this.#state.clock_skew_seconds; }

  get credential() { return this.#state.credential; }

  get selfHealing() { return this.#healer !== null; }

  get pendingReports() { return this.#reports ? this.#reports.pending : 0; }

  /** The patches applied by this client, oldest first (at most 1000). */
  getPatchHistory() {
    return this.#healer ? this.#healer.history() : [];
  }

  /** Send buffered reports now (they are sent in the background anyway); true if none are left. */
  async flushReports() {
    return this.#reports ? this.#reports.flush() : true;
  }

  /** Send the last buffered reports (waiting at most 2 s), then close pooled connections. */
  async close() {
    try {
      if (this.#reports) await this.#reports.close();
    } finally {
      this.#transport.close();
    }
  }

  // --- Payments -------------------------------------------------------------------------------

  createPayment({ amount, currency = null, ...fields } = {}) {
    return this.#call(new Call({ operation: 'create_payment', method: 'POST', path: '/v1/payments',
      route: '/v1/payments', fields: { amount, currency, ...fields }, idempotencyKey: crypto.randomUUID() }));
  }

  getPayment(paymentId) {
    return this.#call(new Call({ operation: 'get_payment', method: 'GET',
      path: `/v1/payments/${encodeURIComponent(String(paymentId))}`, route: '/v1/payments/{id}' }));
  }

  refund(paymentId, { amount, ...fields } = {}) {
    const body = { payment_id: paymentId, ...(amount != null ? { amount } : {}), ...fields };
    return this.#call(new Call({ operation: 'refund', method: 'POST', path: '/v1/refunds', route: '/v1/refunds',
      fields: body, idempotencyKey: crypto.randomUUID() }));
  }

  // --- The call, its retries and its healing --------------------------------------------------

  async #call(call) {
    try {
      return await this.#attempts(call);
    } catch (error) {
      if (this.#healer === null || !(error instanceof MolamError) || !healable(error)) throw error;
      const context = { operation: call.operation, method: call.method, path: call.route, sdk_version: VERSION };
      const cell = { get: () => this.#state, set: (state) => { this.#state = state; } };
      return this.#healer.heal(error, { context, cell, applyContext: this.#applyContext(error),
        retry: (filled) => this.#attempts(this.#retryOf(call, error).withFilled(filled)) });
    }
  }

  #applyContext(error) {
    return {
      now: this.#clock() / 1000,
      serverTime: error instanceof ApiError && error.serverTime != null ? error.serverTime / 1000 : null,
      hasCredential: (name) => this.#credentialValue(name) !== null,
      allowedHosts: this.#allowedHosts,
      credentials: this.#fallback,
    };
  }

  #retryOf(call, error) {
    // After invalid_currency, a patched default currency replaces the one the API refused.
    if (error.code === 'invalid_currency' && this.#state.default_currency) return call.withoutCurrency();
    return call;
  }

  /** Send, retrying 429 answers `max_retries` times with the state's backoff. */
  async #attempts(call) {
    for (let attempt = 0; ; attempt += 1) {
      const state = this.#state;
      try {
        return await this.#send(call, state);
      } catch (error) {
        if (!(error instanceof ApiError) || error.status !== 429 || attempt >= state.max_retries) throw error;
        const wait = backoffDelay(state.backoff, attempt, { retryAfter: error.retryAfter });
        if (wait === null) throw error;
        await sleep(wait * 1000);
      }
    }
  }

  async #send(call, state) {
    const body = call.body(state);
    const timestamp = Math.floor(this.#clock() / 1000) + state.clock_skew_seconds;
    const headers = {
      Authorization: `Bearer ${this.#apiKeyFor(state)}`,
      'Molam-Timestamp': String(timestamp),
      'Molam-Signature': signing.signature({ secretKey: this.#secretKey, timestamp, method: call.method,
        path: call.path, body: body || Buffer.alloc(0) }),
      Accept: 'application/json',
      'User-Agent': USER_AGENT,
    };
    if (body !== null) headers['Content-Type'] = 'application/json';
    if (call.idempotencyKey) headers['Idempotency-Key'] = call.idempotencyKey;
    if (state.api_version) headers['Molam-Version'] = state.api_version;
    const response = await this.#transport.exchange(state.base_url + call.path, { method: call.method, headers, body,
      timeoutMs: state.timeout_ms, maxBytes: MAX_RESPONSE_BYTES });
    if (response.status >= 200 && response.status < 300) {
      if (response.body.length === 0) return {};
      try {
        return JSON.parse(response.body.toString('utf8'));
      } catch {
        throw new MolamError(`${response.status} answer from the API is not JSON`);
      }
    }
    throw apiError(response);
  }

  #credentialValue(name) {
    return this.#fallback.value(name); // never reads a variable outside the configured names
  }

  #apiKeyFor(state) {
    if (state.credential === null) return this.#apiKey;
    const value = this.#credentialValue(state.credential);
    if (value === null) {
      throw new ConfigurationError(`${state.credential} is no longer configured`, { option: 'fallbackCredentials' });
    }
    return value;
  }

  /** The settings as a plain object (for logs and tests). */
  toJSON() {
    return { ...toObject(this.#state), selfHealing: this.selfHealing };
  }
}

function apiError({ status, reason, headers, body }) {
  let detail = null;
  try {
    detail = JSON.parse(body.toString('utf8'));
  } catch {
    detail = null;
  }
  if (detail === null || typeof detail !== 'object' || Array.isArray(detail)) detail = {};
  const text = (value) => (typeof value === 'string' ? value : null);
  return new ApiError({
    status, reason, code: text(detail.error),
    message: text(detail.message) ?? body.subarray(0, 200).toString('utf8'),
    retryAfter: retryAfterSeconds(headers['retry-after']),
    serverTime: httpDate(headers.date),
    field: text(detail.field),
  });
}

function retryAfterSeconds(value) {
  if (!value) return null;
  if (/^\s*\d+\s*$/.test(value)) return Number(value.trim());
  const moment = httpDate(value);
  return moment === null ? null : Math.max(0, (moment - Date.now()) / 1000);
}

function httpDate(value) {
  if (!value) return null;
  const moment = Date.parse(value);
  return Number.isNaN(moment) ? null : moment;
}

module.exports = { MolamClient, VERSION, USER_AGENT, DEFAULT_BASE_URL, healable };
