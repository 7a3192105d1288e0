'use strict';
// The client settings a patch may change, as one frozen value swapped whole: a patch is
// applied entirely or not at all, and a rollback is one more swap. The keys are the operation
// document's setting keys (language-neutral), as the shared test vectors write them.

const DEFAULT_BACKOFF = Object.freeze({ base_delay_ms: 200, max_delay_ms: 5000, jitter: true });

function freezeState(state) {
  return Object.freeze({
    ...state,
    backoff: Object.freeze({ ...state.backoff }),
  });
}

function initialState({ baseUrl, timeoutMs, apiVersion = null }) {
  return freezeState({
    base_url: baseUrl,
    timeout_ms: timeoutMs,
    max_retries: 0, // automatic retries of 429 answers, with `backoff`
    default_currency: null,
    api_version: apiVersion,
    clock_skew_seconds: 0, // added to the local clock when signing requests
    credential: null, // name of the fallback credential in use; null: the primary key
    backoff: DEFAULT_BACKOFF,
    // No filled request fields here: a patch fills them for its retried call only
    // (applyDocument's `fill`), never for the calls after it.
  });
}

/** The state with `changes`, a new frozen value (the old one is untouched). */
function withChanges(state, changes) {
  return freezeState({ ...state, ...changes });
}

/** A state as the vectors write it, or from them (a plain JSON-able object). */
function fromObject(data) {
  return freezeState({ ...data, backoff: { ...DEFAULT_BACKOFF, ...(data.backoff || {}) } });
}

function toObject(state) {
  return JSON.parse(JSON.stringify(state));
}

/**
 * Seconds to wait before retry `attempt` (from 0): min(base * 2**n, max), fully jittered if
 * `jitter`; null when the server asks for more than max_delay_ms (retrying earlier than
 * Retry-After would only be refused again).
 */
function backoffDelay(backoff, attempt, { retryAfter = null, random = Math.random } = {}) {
  const ceiling = Math.min(backoff.base_delay_ms * 2 ** attempt, backoff.max_delay_ms) / 1000;
  let wait = backoff.jitter ? random() * ceiling : ceiling;
  if (retryAfter != null) {
    if (retryAfter * 1000 > backoff.max_delay_ms) return null;
    wait = Math.max(wait, retryAfter);
  }
  return wait;
}

module.exports = { DEFAULT_BACKOFF, initialState, withChanges, fromObject, toObject, backoffDelay, freezeState };
