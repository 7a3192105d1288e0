'use strict';
// HTTP to the self-heal registry API: ask for a patch, send outcome reports.
//
//   POST {selfhealUrl}/api/dev/self-heal           {"sdk", "error", "status", "context", "code"?}
//        200 {"patch": {...}, "envelope": {...}, "receipt": "..."}  ·  404 no patch
//   POST {selfhealUrl}/api/dev/self-heal/reports   {"reports": [...]}  →  202
//
// Both carry `Authorization: Bearer <selfheal token>`; the developer id comes from the token.
// A report on a patch carries the receipt of the answer that served it: the registry counts only
// reports on patches it served to this token.

const { MolamConnectionError, MolamTimeout, PatchRefused } = require('./errors');
const { ResponseTooLarge } = require('./transport');

const SELF_HEAL_PATH = '/api/dev/self-heal';
const REPORTS_PATH = '/api/dev/self-heal/reports';
const MAX_REPORT_ANSWER_BYTES = 16 * 1024;
const MAX_RECEIPT_LENGTH = 200;

/** Down, overloaded or rate-limiting: the last verified patches may stand in. */
class RegistryUnavailable extends Error {}

class RegistryClient {
  constructor({ url, token, maxEnvelopeBytes, userAgent, logger, transport }) {
    this.url = url.replace(/\/+$/, '');
    this.token = token;
    this.maxEnvelopeBytes = maxEnvelopeBytes;
    this.userAgent = userAgent;
    this.logger = logger;
    this.transport = transport;
  }

  post(path, body, { timeoutMs, maxBytes }) {
    const headers = { Authorization: `Bearer ${this.token}`, 'Content-Type': 'application/json',
      Accept: 'application/json', 'User-Agent': this.userAgent };
    return this.transport.exchange(this.url + path, { method: 'POST', headers, body: Buffer.from(JSON.stringify(body), 'utf8'),
      timeoutMs, maxBytes });
  }

  /** {envelope (unverified), receipt} of the patch for this error, or null if the registry has none. */
  async lookup(body, { timeoutMs }) {
    let response;
    try {
      response = await this.post(SELF_HEAL_PATH, body, { timeoutMs, maxBytes: this.maxEnvelopeBytes });
    } catch (error) {
      if (error instanceof ResponseTooLarge) throw new PatchRefused(error.message);
      if (error instanceof MolamTimeout || error instanceof MolamConnectionError) {
        throw new RegistryUnavailable(error.message);
      }
      throw error;
    }
    if (response.status === 404) return null;
    if (response.status === 429 || response.status >= 500) {
      throw new RegistryUnavailable(`registry answered ${response.status}`);
    }
    if (response.status !== 200) {
      throw new PatchRefused(`registry answered ${response.status}: ${response.body.subarray(0, 200).toString()}`);
    }
    let answer;
    try {
      answer = JSON.parse(response.body.toString('utf8'));
    } catch {
      answer = null;
    }
    if (answer === null || typeof answer !== 'object' || !('envelope' in answer)) {
      throw new PatchRefused('registry answer has no envelope');
    }
    const { receipt } = answer;
    const valid = typeof receipt === 'string' && receipt.length <= MAX_RECEIPT_LENGTH;
    return { envelope: answer.envelope, receipt: valid ? receipt : null };
  }

  /** True once the batch needs no more sending; false to keep it and try again later. */
  async sendReports(reports, { timeoutMs }) {
    let response;
    try {
      response = await this.post(REPORTS_PATH, { reports }, { timeoutMs, maxBytes: MAX_REPORT_ANSWER_BYTES });
    } catch (error) {
      this.logger.debug?.(`self-heal reports not sent yet: ${error.message}`);
      return false;
    }
    if (response.status < 300) return true;
    if (response.status === 408 || response.status === 429 || response.status >= 500) return false;
    // A batch the API refuses (400, 401, 403) would be refused for ever: say so, don't loop.
    this.logger.warn(`self-heal registry refused ${reports.length} reports (${response.status}): `
      + `${response.body.subarray(0, 300).toString()}`);
    return true;
  }
}

module.exports = { RegistryClient, RegistryUnavailable, SELF_HEAL_PATH, REPORTS_PATH };
