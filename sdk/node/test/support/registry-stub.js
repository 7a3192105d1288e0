'use strict';
// A tiny real HTTP stand-in for the registry API's two SDK routes (as tests/sdk/registry_stub.py),
// serving envelopes signed in the test with the vectors' current key.
//
//   POST /api/dev/self-heal          → 200 {"patch", "envelope", "receipt"} | 404 no patch | `lookupStatus`
//   POST /api/dev/self-heal/reports  → 202 | `reportsStatus` (e.g. 503, to test buffering)

const http = require('node:http');
const { CURRENT, payloadFor, seal } = require('./keys');

const TOKEN = 'dev-token-for-tests';

class RegistryStub {
  constructor() {
    this.patches = new Map(); // error signature → {args, options}
    this.key = CURRENT;
    this.tamper = null;
    this.lookupStatus = null;
    this.reportsStatus = 202;
    this.lookups = [];
    this.reports = [];
    this.reportPosts = 0;
    this.reportsGate = null; // a promise report posts wait on (a slow registry)
    this.lookupGate = null; // a promise lookups wait on (a silent registry: the SDK times out)
    this.server = http.createServer((request, response) => this.serve(request, response));
    this.connections = 0; // TCP connections accepted (the SDK keeps them alive)
    this.server.on('connection', () => { this.connections += 1; });
  }

  async start() {
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${this.server.address().port}`;
    return this;
  }

  stop() {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(resolve));
  }

  add(signature, operations, rollback = null, options = {}) {
    const { patchId = `p-${signature}`, ...rest } = options;
    this.patches.set(signature, { args: [patchId, signature, operations, rollback], options: rest });
    return patchId;
  }

  async serve(request, response) {
    const chunks = [];
    for await (const chunk of request) chunks.push(chunk);
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    const [status, document] = await this.handle(request.url, request.headers, body);
    const data = Buffer.from(JSON.stringify(document));
    response.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': data.length });
    response.end(data);
  }

  async handle(path, headers, body) {
    if (headers.authorization !== `Bearer ${TOKEN}`) {
      return [401, { error: 'unauthorized', message: 'unknown or revoked token' }];
    }
    if (path === '/api/dev/self-heal/reports') {
      this.reportPosts += 1;
      if (this.reportsGate) await this.reportsGate;
      if (this.reportsStatus < 300) this.reports.push(...body.reports);
      return [this.reportsStatus, { accepted: body.reports.length }];
    }
    this.lookups.push(body);
    if (this.lookupGate) await this.lookupGate;
    if (this.lookupStatus !== null) return [this.lookupStatus, { error: 'unavailable', message: 'stub says so' }];
    // The registry's rules, reduced: the code (or the message's first word), then the status.
    const entry = this.patches.get(body.code || body.error.split(':')[0]) || this.patches.get(String(body.status));
    if (entry === undefined) return [404, { error: 'no_patch', message: 'no active patch' }];
    const payload = payloadFor(...entry.args, entry.options);
    let envelope = seal(payload, this.key);
    if (this.tamper) envelope = this.tamper(envelope);
    return [200, { patch: { id: payload.patch_id, version: payload.version }, envelope, receipt: receiptFor(payload.patch_id) }];
  }
}

/** The stub's receipt for a patch: the SDK must send it back, unread, with that patch's reports. */
function receiptFor(patchId) {
  return `stub-receipt-${patchId}`;
}

module.exports = { RegistryStub, TOKEN, receiptFor };
