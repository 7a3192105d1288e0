'use strict';
// The fixed table of what a patch may do, and how an operation document is applied: the same
// table, bounds and refusals as the Python SDK (molam/operations.py) and the registry's
// compiler (selfheal/patchlang/operations.py).
//
// A patch never runs code. Its operations name a setting or an action; each name is looked up
// in the Maps below, which hold the only functions a patch can reach, and each argument is
// checked against the compiler's bounds (again: a signature says who sent a patch, not that it
// is sane). Any unknown operation, setting, argument or out-of-bounds value refuses the whole
// document; the state is frozen, so a refused document leaves the client exactly as it was.
//
//   {"format": "selfheal.operations", "version": 1, "operations": [
//       {"op": "set", "setting": "timeout_ms", "value": 30000},
//       {"op": "log", "level": "warning", "message": "⚡ timeout raised to 30 s"}]}

const { CREDENTIAL_NAME, DEFAULT_FALLBACK_CREDENTIALS } = require('./config');
const { PatchRefused } = require('./errors');
const { withChanges } = require('./state');

const FORMAT = 'selfheal.operations';
const FORMAT_VERSION = 1;
const MAX_OPERATIONS = 32;
const APPLY_BUDGET_MS = 5000; // the runbook: a patch must not block more than 5 s

class Invalid extends Error {}

const isObject = (value) => value !== null && typeof value === 'object' && !Array.isArray(value);
const codePoints = (text) => [...text].length;

// --- Bounds (mirroring the registry compiler's) ------------------------------------------------

const BIDI = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/u;
// Python's str.isprintable(): no character of the Other or Separator categories but the space.
const NOT_PRINTABLE = /(?! )[\p{C}\p{Z}]/u;
const URL = /^https:\/\/([a-z0-9.-]+)(?::([1-9][0-9]{0,4}))?(\/[A-Za-z0-9._~/-]*)?$/;
const API_VERSION = /^(?:v[1-9][0-9]{0,2}|([0-9]{4})-([0-9]{2})-([0-9]{2}))$/;
const FIELD_NAME = /^[a-z][a-z0-9_]{0,63}$/;
const CURRENCY = /^[A-Z]{3}$/;
const COUNTRY = /^[A-Z]{2}$/;

function text(limit) {
  return (value) => {
    if (typeof value !== 'string' || codePoints(value) > limit) {
      throw new Invalid(`must be a string of at most ${limit} characters`);
    }
    if (NOT_PRINTABLE.test(value) || BIDI.test(value)) {
      throw new Invalid('contains a control, invisible or bidirectional character');
    }
    return value;
  };
}

function integer(low, high) {
  return (value) => {
    // Booleans are never numbers here (nor in the Python SDK, where bool is an int).
    if (typeof value !== 'number' || !Number.isInteger(value) || value < low || value > high) {
      throw new Invalid(`must be a whole number between ${low} and ${high}`);
    }
    return value;
  };
}

function boolean(value) {
  if (typeof value !== 'boolean') throw new Invalid('must be true or false');
  return value;
}

function currency({ nullable }) {
  return (value) => {
    if (value === null && nullable) return null;
    if (typeof value !== 'string' || !CURRENCY.test(value)) throw new Invalid('must be an ISO 4217 currency code');
    return value;
  };
}

function httpsUrl(value, context) {
  const match = typeof value === 'string' ? URL.exec(value) : null;
  if (match === null) throw new Invalid('must be https://host[:port][/path]');
  if (match[2] !== undefined && Number(match[2]) > 65535) throw new Invalid('port must be between 1 and 65535');
  if (!context.allowedHosts.has(match[1])) throw new Invalid(`host ${match[1]} is not one this client allows`);
  const path = match[3] || '';
  if (path.includes('//') || `${path}/`.includes('/../')) throw new Invalid('path must not contain // or ..');
  return value;
}

function isCalendarDate(year, month, day) {
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
  return year >= 1 && month >= 1 && month <= 12 && day >= 1 && day <= days[month - 1];
}

function apiVersion(value) {
  const match = typeof value === 'string' ? API_VERSION.exec(value) : null;
  if (match === null) throw new Invalid('must look like v2 or 2024-01-31');
  if (match[1] !== undefined && !isCalendarDate(Number(match[1]), Number(match[2]), Number(match[3]))) {
    throw new Invalid(`${value} is not a calendar date`);
  }
  return value;
}

function credentialName(value, context) {
  if (typeof value !== 'string' || !CREDENTIAL_NAME.test(value)) {
    throw new Invalid('must be a credential name such as MOLAM_FALLBACK_API_KEY');
  }
  const credentials = context.credentials || DEFAULT_FALLBACK_CREDENTIALS;
  if (!credentials.allows(value)) {
    throw new Invalid(`${value} is not a fallback credential this client allows (${credentials.describe()})`);
  }
  if (!context.hasCredential(value)) throw new Invalid(`no credential named ${value} is configured`);
  return value;
}

function country(value) {
  if (typeof value !== 'string' || !COUNTRY.test(value)) throw new Invalid('must be an ISO 3166-1 alpha-2 country code');
  return value;
}

// The request fields a patch may fill, each with its type (the compiler's FILLABLE_FIELDS): no URL,
// e-mail or free text, so a patch cannot send a payment's callback or receipt elsewhere.
const FILLABLE_FIELDS = new Map([['currency', currency({ nullable: false })], ['country', country]]);

function fieldDefaults(value, context) {
  if (!isObject(value) || Object.keys(value).length < 1) throw new Invalid('must map at least one field name to its default');
  // Every name first, then every value: the same refusal whatever the order of the keys.
  const names = Object.keys(value);
  if (!names.every((name) => FIELD_NAME.test(name))) throw new Invalid('field names must be snake_case ASCII');
  for (const name of names) {
    if (!FILLABLE_FIELDS.has(name)) {
      throw new Invalid(`field ${name} is not one a patch may fill (only: ${[...FILLABLE_FIELDS.keys()].join(', ')})`);
    }
  }
  for (const name of names) {
    try {
      FILLABLE_FIELDS.get(name)(value[name], context);
    } catch (error) {
      if (error instanceof Invalid) throw new Invalid(`field ${name}: ${error.message}`);
      throw error;
    }
  }
  return { ...value };
}

// Python's round(): halves go to the even neighbour, so both SDKs measure the same skew.
function roundHalfEven(x) {
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff < 0.5) return floor;
  if (diff > 0.5) return floor + 1;
  return floor % 2 === 0 ? floor : floor + 1;
}

// --- Settings: {"op": "set", "setting": key, "value": …} -----------------------------------------

const SETTINGS = new Map([
  ['base_url', httpsUrl],
  ['timeout_ms', integer(100, 120000)],
  ['max_retries', integer(0, 10)],
  ['default_currency', currency({ nullable: true })],
  ['api_version', apiVersion],
  ['clock_skew_seconds', integer(-300, 300)],
]);

// --- Actions: {"op": key, ...arguments} ---------------------------------------------------------
// `params`: every argument is required and no others are accepted.

function resign(state, args, context) {
  // Every attempt is signed afresh, so the retry is re-signed anyway; with use_server_time the
  // client first adopts the server's clock, measured from the failing answer's Date header.
  if (!args.use_server_time) return state;
  if (context.serverTime == null) throw new Invalid('the failing answer carried no server time');
  const skew = roundHalfEven(context.serverTime - context.now);
  return withChanges(state, { clock_skew_seconds: integer(-300, 300)(skew, context) });
}

const ACTIONS = new Map([
  // 401: switch to a fallback credential the client holds, by name; and back.
  ['use_fallback_credential', {
    params: { name: credentialName },
    apply: (s, a) => withChanges(s, { credential: a.name }),
  }],
  ['use_primary_credential', { params: {}, apply: (s) => withChanges(s, { credential: null }) }],
  // Bad HMAC signature.
  ['resign_request', { params: { use_server_time: boolean }, apply: resign }],
  // 429: retry up to `attempts` times, delay min(base * 2^n, max), jittered; Retry-After honoured.
  ['retry_with_backoff', {
    params: { attempts: integer(1, 10), base_delay_ms: integer(10, 10000), max_delay_ms: integer(10, 60000),
      jitter: boolean },
    apply: (s, a) => withChanges(s, { max_retries: a.attempts,
      backoff: { base_delay_ms: a.base_delay_ms, max_delay_ms: a.max_delay_ms, jitter: a.jitter } }),
    rule: (a) => (a.base_delay_ms > a.max_delay_ms ? 'base delay must not exceed max delay' : null),
  }],
  // 400: fill missing required request fields (never overriding the caller's), in the retried call
  // only: applyDocument returns them apart from the state, which later calls use.
  ['fill_required_fields', { params: { fields: fieldDefaults }, apply: (s) => s }],
  // Nothing to undo (fills end with the retried call); kept so that existing rollbacks stay valid.
  ['clear_filled_fields', { params: {}, apply: (s) => s }],
]);

const LOG_LEVELS = new Set(['debug', 'info', 'warning', 'error']);
const OPERATION_NAMES = new Set(['set', 'log', ...ACTIONS.keys()]);

function sameKeys(object, expected) {
  const keys = Object.keys(object);
  return keys.length === expected.length && expected.every((key) => Object.prototype.hasOwnProperty.call(object, key));
}

function exactKeys(operation, expected, where) {
  if (!sameKeys(operation, expected)) {
    throw new PatchRefused(`${where}: expected keys ${JSON.stringify([...expected].sort())}, `
      + `got ${JSON.stringify(Object.keys(operation).sort())}`);
  }
}

/** The operations of a well-formed document (format, version, 1 to 32 objects), else PatchRefused. */
function documentOperations(document) {
  if (!isObject(document) || document.format !== FORMAT) throw new PatchRefused(`not a ${FORMAT} document`);
  if (!sameKeys(document, ['format', 'version', 'operations'])) {
    throw new PatchRefused(`unexpected document keys ${JSON.stringify(Object.keys(document).sort())}`);
  }
  if (document.version !== FORMAT_VERSION) {
    throw new PatchRefused(`unsupported document version ${JSON.stringify(document.version)}`);
  }
  const { operations } = document;
  if (!Array.isArray(operations) || operations.length < 1 || operations.length > MAX_OPERATIONS) {
    throw new PatchRefused(`operations must be a list of 1 to ${MAX_OPERATIONS} operations`);
  }
  if (!operations.every(isObject)) throw new PatchRefused('every operation must be an object');
  return operations;
}

/**
 * The state after every operation of `document`: {state, logs: [[level, message], …], fill} (log
 * lines to emit once the whole document applied; request fields to fill in the retried call
 * only), or PatchRefused naming the first problem. context: {now, serverTime (epoch seconds or
 * null), hasCredential(name), allowedHosts: Set, credentials: FallbackCredentials (./config.js)}.
 */
function applyDocument(document, state, context, { budgetMs = APPLY_BUDGET_MS } = {}) {
  const operations = documentOperations(document);
  const deadline = performance.now() + budgetMs;
  const logs = [];
  const fill = {};
  operations.forEach((operation, index) => {
    if (performance.now() > deadline) throw new PatchRefused(`applying the patch took longer than ${budgetMs} ms`);
    const where = `operations[${index}]`;
    const name = operation.op;
    try {
      if (name === 'set') {
        const check = typeof operation.setting === 'string' ? SETTINGS.get(operation.setting) : undefined;
        if (check === undefined) throw new PatchRefused(`${where}: unknown setting ${JSON.stringify(operation.setting)}`);
        exactKeys(operation, ['op', 'setting', 'value'], where);
        state = withChanges(state, { [operation.setting]: check(operation.value, context) });
      } else if (name === 'log') {
        exactKeys(operation, ['op', 'level', 'message'], where);
        if (typeof operation.level !== 'string' || !LOG_LEVELS.has(operation.level)) {
          throw new Invalid(`unknown log level ${JSON.stringify(operation.level)}`);
        }
        logs.push([operation.level, text(500)(operation.message, context)]);
      } else {
        const action = typeof name === 'string' ? ACTIONS.get(name) : undefined;
        if (action === undefined) throw new PatchRefused(`${where}: unknown operation ${JSON.stringify(name)}`);
        exactKeys(operation, ['op', ...Object.keys(action.params)], where);
        const args = {};
        for (const [key, check] of Object.entries(action.params)) args[key] = check(operation[key], context);
        const problem = action.rule ? action.rule(args) : null;
        if (problem) throw new Invalid(problem);
        state = action.apply(state, args, context);
        if (name === 'fill_required_fields') Object.assign(fill, args.fields);
      }
    } catch (error) {
      if (error instanceof Invalid) throw new PatchRefused(`${where} (${name}): ${error.message}`);
      throw error;
    }
  });
  return { state, logs, fill };
}

module.exports = {
  FORMAT, FORMAT_VERSION, MAX_OPERATIONS, APPLY_BUDGET_MS, SETTINGS, ACTIONS, LOG_LEVELS, OPERATION_NAMES,
  FILLABLE_FIELDS, applyDocument, documentOperations, roundHalfEven,
};
