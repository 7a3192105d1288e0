'use strict';
// Request signatures for the payments API: HMAC-SHA256 with the account's secret key, byte for
// byte the Python SDK's scheme (molam/signing.py).
//
//   Authorization:    Bearer <api key>
//   Molam-Timestamp:  <unix seconds, from the client clock plus clockSkewSeconds>
//   Molam-Signature:  v1=<hex HMAC-SHA256(secret key, "<timestamp>.<METHOD>.<path>." + body)>

const crypto = require('node:crypto');

const SCHEME = 'v1';

function signature({ secretKey, timestamp, method, path, body }) {
  const head = Buffer.from(`${timestamp}.${String(method).toUpperCase()}.${path}.`, 'utf8');
  const tail = body == null ? Buffer.alloc(0) : Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8');
  const mac = crypto.createHmac('sha256', Buffer.from(secretKey, 'utf8')).update(head).update(tail);
  return `${SCHEME}=${mac.digest('hex')}`;
}

function verify({ secretKey, timestamp, method, path, body, header }) {
  const expected = Buffer.from(signature({ secretKey, timestamp, method, path, body }));
  const given = Buffer.from(String(header));
  return expected.length === given.length && crypto.timingSafeEqual(expected, given);
}

module.exports = { SCHEME, signature, verify };
