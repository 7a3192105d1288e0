'use strict';
// A minimal payments API over real HTTP or HTTPS that counts the TCP connections it accepts, for
// the keep-alive and proxy tests (signatures are the Python payments server's business).
//
//   POST /v1/payments  → 201 {id, status: "succeeded", ...body}, or 400 invalid_currency for "XYZ"
//   GET  /v1/payments/{id} → 200

const http = require('node:http');
const https = require('node:https');

class CountingServer {
  /** `tls`: {cert, key} PEM for HTTPS; `closeConnections`: close each connection after its answer, unannounced. */
  constructor({ tls = null, closeConnections = false } = {}) {
    this.connections = 0;
    this.requests = [];
    this.closeConnections = closeConnections;
    const handler = (request, response) => this.serve(request, response);
    this.server = tls ? https.createServer(tls, handler) : http.createServer(handler);
    this.server.on(tls ? 'secureConnection' : 'connection', () => { this.connections += 1; });
    this.scheme = tls ? 'https' : 'http';
  }

  async start() {
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `${this.scheme}://127.0.0.1:${this.server.address().port}`;
    return this;
  }

  stop() {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(resolve));
  }

  async serve(request, response) {
    const chunks = [];
    for await (const chunk of request) chunks.push(chunk);
    const body = chunks.length > 0 ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : null;
    this.requests.push({ method: request.method, url: request.url, headers: request.headers, body });
    let status = 200;
    let document = { id: 'pay_1', status: 'succeeded' };
    if (request.method === 'POST') {
      [status, document] = body.currency === 'XYZ'
        ? [400, { error: 'invalid_currency', message: 'currency not supported' }]
        : [201, { id: `pay_${this.requests.length}`, status: 'succeeded', ...body }];
    }
    const data = Buffer.from(JSON.stringify(document));
    response.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': data.length });
    response.end(data, () => {
      if (this.closeConnections) request.socket.end(); // as servers do with idle connections
    });
  }
}

module.exports = { CountingServer };
