'use strict';
// What a call can reject with. Every error the payments API or the network produces is a
// MolamError, so a caller (and the healer) handles one family.

class MolamError extends Error {
  constructor(message) {
    super(message);
    this.name = new.target.name;
    this.status = null;
    this.code = null;
  }

  /** The text the self-heal request and the reports carry. */
  get errorText() {
    return this.message;
  }
}

/** The payments API answered with an error status. */
class ApiError extends MolamError {
  constructor({ status, reason, code = null, message, retryAfter = null, serverTime = null, field = null }) {
    super(`${status} ${reason}: ${code || 'error'}: ${message}`);
    this.status = status;
    this.reason = reason;
    this.code = code;
    this.detail = message;
    this.retryAfter = retryAfter; // seconds, from Retry-After
    this.serverTime = serverTime; // epoch milliseconds, from the Date header
    this.field = field;
  }

  // Stable text (no ids or amounts) so the runbook's "errors without a patch" report groups it;
  // it starts like the runbook's own example, "401 Unauthorized". The same as the Python SDK's.
  get errorText() {
    return this.code ? `${this.status} ${this.reason}: ${this.code}` : `${this.status} ${this.reason}`;
  }
}

/** No complete answer within the client's timeout. Its code is Node's, ETIMEDOUT. */
class MolamTimeout extends MolamError {
  constructor(message) {
    super(message);
    this.code = 'ETIMEDOUT';
  }

  get errorText() {
    return `ETIMEDOUT: ${this.message}`;
  }
}

/** The API could not be reached; `code` is the system error's (ECONNREFUSED, ENOTFOUND, …). */
class MolamConnectionError extends MolamError {
  constructor(message, code) {
    super(message);
    this.code = typeof code === 'string' && /^E[A-Z0-9_]{1,40}$/.test(code) ? code : 'ConnectionError';
  }

  get errorText() {
    return `${this.code}: ${this.message}`;
  }
}

/** The client was configured with something it cannot use: `option` names it, `reason` says why. */
class ConfigurationError extends MolamError {
  constructor(reason, { option = null } = {}) {
    super(option ? `${option}: ${reason}` : reason);
    this.option = option;
    this.reason = reason;
  }
}

/** A patch failed verification or validation: it is not applied (fail closed). Internal. */
class PatchRefused extends Error {
  constructor(message) {
    super(message);
    this.name = 'PatchRefused';
  }
}

module.exports = { MolamError, ApiError, MolamTimeout, MolamConnectionError, ConfigurationError, PatchRefused };
