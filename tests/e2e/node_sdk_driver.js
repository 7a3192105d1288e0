'use strict';
// A Node SDK client driven line by line (tests/e2e/test_switched_off_or_expired.py runs it): each
// stdin line {"later_ms", "currency"} moves the client's clock `later_ms` ahead of this machine's
// and makes one payment call; each stdout line says what came of it. Settings come from the
// environment, as for node_sdk_loop.js.

const readline = require('node:readline');
const { MolamClient } = require('../../sdk/node');

const env = process.env;
// Every log line to stderr: stdout carries one JSON line per call.
const STDERR = Object.fromEntries(['debug', 'info', 'log', 'warn', 'error'].map((level) => [level,
  (...parts) => console.error(`[${level}]`, ...parts)]));

async function main() {
  const applied = [];
  let later = 0;
  const client = new MolamClient({
    apiKey: 'pk_primary', secretKey: env.PAYMENTS_SECRET_KEY, baseUrl: env.PAYMENTS_URL, timeout: 2000,
    selfhealUrl: env.MOLAM_SELFHEAL_URL, selfhealToken: env.MOLAM_SELFHEAL_TOKEN,
    trustedKeys: JSON.parse(env.TRUSTED_KEYS), reportInterval: 50, clock: () => Date.now() + later,
    onPatchApplied: (patch) => applied.push(patch.id), logger: STDERR,
  });
  for await (const line of readline.createInterface({ input: process.stdin })) {
    const command = JSON.parse(line);
    later = command.later_ms;
    let payment = null;
    let error = null;
    try {
      payment = await client.createPayment({ amount: 100, currency: command.currency, country: 'SN' });
    } catch (failure) {
      error = { name: failure.name, status: failure.status, code: failure.code };
    }
    console.log(JSON.stringify({ payment, error, applied }));
  }
  await client.close();
}

main().catch((failure) => {
  console.error(failure);
  process.exitCode = 1;
});
