'use strict';
// One HTTP exchange with a deadline and a size cap (node:http / node:https).
//
// One timer covers the whole exchange — connecting, sending, the answer's headers and every
// byte of its body — so a server that drips one byte at a time cannot hold a caller past its
// timeout, and the body is read up to a cap, so it cannot fill the caller's memory. No
// redirects are followed and no proxy is implied.

const http = require('node:http');
const https = require('node:https');
const { MolamConnectionError, MolamError, MolamTimeout } = require('./errors');

class ResponseTooLarge extends MolamError {}

/**
 * Send one request; resolves {status, reason, headers (lower-case names), body: Buffer}; rejects
 * with MolamTimeout past `timeoutMs`, MolamConnectionError if unreachable, ResponseTooLarge.
 */
function exchange(url, { method, headers, body = null, timeoutMs, maxBytes, agent }) {
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
    const module = parts.protocol === 'https:' ? https : http;
    const sent = { ...headers };
    if (body !== null) sent['Content-Length'] = String(body.length);
    try {
      request = module.request(parts, { method, headers: sent, agent: agent === undefined ? false : agent });
    } catch (error) {
      finish(new MolamConnectionError(`${host}: ${error.message}`, error.code));
      return;
    }
    request.on('error', (error) => {
      finish(new MolamConnectionError(`${host}: ${error.message || error.code || 'connection error'}`, error.code));
    });
    request.on('response', (response) => {
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
        finish(null, { status: response.statusCode, reason: response.statusMessage || '', headers: response.headers,
          body: Buffer.concat(chunks) });
      });
      response.on('aborted', () => finish(new MolamConnectionError(`${host}: answer cut short`, 'ECONNRESET')));
      response.on('error', (error) => finish(new MolamConnectionError(`${host}: ${error.message}`, error.code)));
    });
    request.end(body === null ? undefined : body);
  });
}

module.exports = { exchange, ResponseTooLarge };
