'use strict';
// HTTP for the SDK (node:http / node:https): kept-alive connections, the proxy the environment
// names, one deadline and a size cap per exchange — as the Python SDK's molam/transport.py.
//
// Connections: keep-alive agents, one pool per host (at most 4 idle sockets, dropped after
// 30 s idle), so calls made one after another use one TCP (and TLS) connection per host. A
// reused connection that fails before any answer (the server closed it meanwhile) is replaced
// by a fresh one, once.
//
// Proxies: HTTPS_PROXY for https:// URLs, HTTP_PROXY for http:// ones (lower-case names win, as
// curl and Python read them; HTTP_PROXY is ignored in a CGI process), NO_PROXY to bypass them;
// read when the client is created. https:// goes through a CONNECT tunnel, so the proxy sees
// the host, never the request.
//
// Deadline: one timer covers the whole exchange — connecting, sending, the answer's headers and
// every byte of its body — so a server that drips one byte at a time cannot hold a caller past
// its timeout, and the body is read up to a cap, so it cannot fill the caller's memory. No
// redirects are followed.

const http = require('node:http');
const https = require('node:https');
const tls = require('node:tls');
const { urlToHttpOptions } = require('node:url');
const { ConfigurationError, MolamConnectionError, MolamError, MolamTimeout } = require('./errors');

const MAX_IDLE_PER_HOST = 4;
const IDLE_MS = 30000; // idle sockets are dropped: NATs and load balancers forget them silently
const STALE = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);

class ResponseTooLarge extends MolamError {}

/** {http, https, no} from the environment, read as Python's urllib.request.getproxies_environment. */
function proxiesFromEnvironment(env = process.env) {
  const proxies = {};
  for (const [name, value] of Object.entries(env)) {
    if (value && name.toLowerCase().endsWith('_proxy')) proxies[name.toLowerCase().slice(0, -6)] = value;
  }
  if ('REQUEST_METHOD' in env) delete proxies.http; // a CGI script: HTTP_PROXY may come from a "Proxy:" header
  for (const [name, value] of Object.entries(env)) {
    if (!name.endsWith('_proxy')) continue; // then the lower-case names, which win
    if (value) proxies[name.toLowerCase().slice(0, -6)] = value;
    else delete proxies[name.toLowerCase().slice(0, -6)];
  }
  return proxies;
}

/** NO_PROXY's rules, as Python's urllib.request.proxy_bypass_environment applies them. */
function bypassed(hostAndPort, noProxy) {
  if (!noProxy) return false;
  if (noProxy === '*') return true;
  const host = hostAndPort.toLowerCase();
  const split = /^(.*):([0-9]*)$/s.exec(host);
  const hostOnly = split ? split[1] : host;
  for (let name of noProxy.split(',')) {
    name = name.trim();
    if (!name) continue;
    name = name.replace(/^\.+/, '').toLowerCase();
    if (hostOnly === name || host === name) return true;
    name = `.${name}`;
    if (hostOnly.endsWith(name) || host.endsWith(name)) return true;
  }
  return false;
}

/** The proxy URL for a request, or null when there is none or NO_PROXY bypasses it. */
function proxyFor(scheme, host, port, proxies) {
  const url = proxies[scheme];
  if (!url) return null;
  if (bypassed(port ? `${host}:${port}` : host, proxies.no)) return null;
  return url;
}

/** An http:// proxy URL (a bare host:port is taken as one, as curl does): {host, port, authorization}. */
function parseProxy(value, variable) {
  let parts;
  try {
    parts = new URL(value.includes('://') ? value : `http://${value}`);
  } catch {
    throw new ConfigurationError(`${JSON.stringify(value)}: is not a proxy URL`, { option: variable });
  }
  if (parts.protocol !== 'http:') {
    throw new ConfigurationError(`${JSON.stringify(value)}: only http:// proxies are supported`, { option: variable });
  }
  if (!parts.hostname) throw new ConfigurationError(`${JSON.stringify(value)}: no proxy host`, { option: variable });
  let authorization = null;
  if (parts.username) {
    const credentials = `${decodeURIComponent(parts.username)}:${decodeURIComponent(parts.password)}`;
    authorization = `Basic ${Buffer.from(credentials).toString('base64')}`;
  }
  return { host: parts.hostname, port: Number(parts.port || 80), authorization };
}

/** A keep-alive https agent whose sockets are TLS over a CONNECT tunnel through `proxy`. */
class TunnelAgent extends https.Agent {
  constructor(proxy, options) {
    super(options);
    this.proxy = proxy;
  }

  createConnection(options, callback) {
    const target = `${options.host}:${options.port}`;
    const headers = { Host: target };
    if (this.proxy.authorization) headers['Proxy-Authorization'] = this.proxy.authorization;
    const connect = http.request({ host: this.proxy.host, port: this.proxy.port, method: 'CONNECT', path: target,
      headers, agent: false });
    let done = false;
    const finish = (error, socket) => {
      if (done) return;
      done = true;
      callback(error, socket);
    };
    connect.once('connect', (response, socket) => {
      if (response.statusCode !== 200) {
        socket.destroy();
        finish(new Error(`Tunnel connection failed: ${response.statusCode} ${response.statusMessage}`));
        return;
      }
      finish(null, tls.connect({ ...options, socket }));
    });
    connect.once('error', finish);
    connect.end();
    return undefined; // the socket comes through `callback`
  }
}

/** Pooled keep-alive connections, through the environment's proxy. */
class HttpTransport {
  constructor({ env = process.env } = {}) {
    this.proxies = proxiesFromEnvironment(env);
    for (const scheme of ['http', 'https']) { // a bad proxy variable is a configuration error now, not on a call
      if (this.proxies[scheme]) parseProxy(this.proxies[scheme], `${scheme.toUpperCase()}_PROXY`);
    }
    this.agents = new Map();
  }

  #agent(key, make) {
    let agent = this.agents.get(key);
    if (agent === undefined) {
      agent = make({ keepAlive: true, maxFreeSockets: MAX_IDLE_PER_HOST, timeout: IDLE_MS });
      this.agents.set(key, agent);
    }
    return agent;
  }

  /** The module and request options (agent included) for `parts`, direct or through a proxy. */
  route(parts, method, headers) {
    const scheme = parts.protocol.slice(0, -1);
    const proxyUrl = proxyFor(scheme, parts.hostname, parts.port, this.proxies);
    if (proxyUrl === null) {
      const agent = this.#agent(scheme, (options) => (scheme === 'https' ? new https.Agent(options)
        : new http.Agent(options)));
      return [scheme === 'https' ? https : http, { ...urlToHttpOptions(parts), method, headers, agent }];
    }
    const proxy = parseProxy(proxyUrl, `${scheme.toUpperCase()}_PROXY`);
    if (scheme === 'https') {
      const agent = this.#agent(`tunnel ${proxyUrl}`, (options) => new TunnelAgent(proxy, options));
      return [https, { ...urlToHttpOptions(parts), method, headers, agent }];
    }
    // http:// through a proxy: the absolute URL in the request line, for the proxy to forward.
    const agent = this.#agent(`proxy ${proxyUrl}`, (options) => new http.Agent(options));
    const sent = { ...headers, Host: parts.host };
    if (proxy.authorization) sent['Proxy-Authorization'] = proxy.authorization;
    return [http, { host: proxy.host, port: proxy.port, path: `http://${parts.host}${parts.pathname}${parts.search}`,
      method, headers: sent, agent }];
  }

  /**
   * Send one request; resolves {status, reason, headers (lower-case names), body: Buffer};
   * rejects with MolamTimeout past `timeoutMs`, MolamConnectionError if unreachable, ResponseTooLarge.
   */
  exchange(url, { method, headers, body = null, timeoutMs, maxBytes }) {
    return new Promise((resolve, reject) => {
      let parts;
      try {
        parts = new URL(url);
      } catch {
        reject(new MolamConnectionError(`unsupported URL ${JSON.stringify(url)}`));
        return;
      }
      if ((parts.protocol !== 'http:' && parts.protocol !== 'https:') || !parts.hostname) {
        reject(new MolamConnectionError(`unsupported URL ${JSON.stringify(url)}`));
        return;
      }
      const host = parts.hostname;
      let settled = false;
      let request;
      const finish = (error, value) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (error) {
          if (request) request.destroy();
          reject(error);
        } else {
          resolve(value);
        }
      };
      const timer = setTimeout(() => {
        finish(new MolamTimeout(`no complete answer from ${host} within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      const sent = { ...headers };
      if (body !== null) sent['Content-Length'] = String(body.length);
      const send = (firstAttempt) => {
        let answered = false;
        try {
          const [module, options] = this.route(parts, method, sent);
          request = module.request(options);
        } catch (error) {
          finish(new MolamConnectionError(`${host}: ${error.message}`, error.code));
          return;
        }
        request.on('error', (error) => {
          // The server closed the idle connection as we reused it: once more, on a fresh one. Safe:
          // nothing was answered, payment POSTs carry an Idempotency-Key, lookups are reads.
          if (firstAttempt && !answered && request.reusedSocket && STALE.has(error.code) && !settled) {
            send(false);
            return;
          }
          finish(new MolamConnectionError(`${host}: ${error.message || error.code || 'connection error'}`,
            error.code));
        });
        request.on('response', (response) => {
          answered = true;
          const chunks = [];
          let size = 0;
          response.on('data', (chunk) => {
            size += chunk.length;
            if (size > maxBytes) {
              finish(new ResponseTooLarge(`response from ${host} is larger than ${maxBytes} bytes`));
              return;
            }
            chunks.push(chunk);
          });
          response.on('end', () => {
            finish(null, { status: response.statusCode, reason: response.statusMessage || '',
              headers: response.headers, body: Buffer.concat(chunks) });
          });
          response.on('aborted', () => finish(new MolamConnectionError(`${host}: answer cut short`, 'ECONNRESET')));
          response.on('error', (error) => finish(new MolamConnectionError(`${host}: ${error.message}`, error.code)));
        });
        request.end(body === null ? undefined : body);
      };
      send(true);
    });
  }

  /** Close pooled connections (a later call opens new ones). */
  close() {
    for (const agent of this.agents.values()) agent.destroy();
    this.agents.clear();
  }
}

module.exports = {
  HttpTransport, ResponseTooLarge, TunnelAgent, proxiesFromEnvironment, proxyFor, parseProxy, bypassed,
  MAX_IDLE_PER_HOST, IDLE_MS,
};
