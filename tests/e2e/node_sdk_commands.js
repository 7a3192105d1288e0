'use strict';
// A Node SDK client driven by one JSON command per stdin line (tests/e2e/sdk_drivers.py runs it),
// answering one JSON line per command on stdout:
//   {"op": "pay", "later_ms": N, "currency": "XYZ"} → {"payment", "error", "applied", "warnings"}
//   {"op": "pending"}                               → {"pending": reports still buffered}
//   {"op": "flush"}                                 → {"flushed": true when none is left}
// `later_ms` moves the client's clock ahead of this machine's for that call. `warnings` are the
// SDK's warning lines since the previous command (why an envelope was refused). Settings come from
// the environment, as for node_sdk_driver.js.

const readline = require('node:readline');
const { MolamClient } = require('../../sdk/node');

const env = process.env;
let warnings = [];
const text = (parts) => parts.map((part) => (part instanceof Error ? part.message : String(part))).join(' ');
// Every log line to stderr (stdout carries the answers); warnings are also kept for the next answer.
const LOGGER = {
  debug: (...parts) => console.error('[debug]', ...parts),
  info: (...parts) => console.error('[info]', ...parts),
  log: (...parts) => console.error('[log]', ...parts),
  warn: (...parts) => { warnings.push(text(parts)); console.error('[warn]', ...parts); },
  error: (...parts) => { warnings.push(text(parts)); console.error('[error]', ...parts); },
};

async function main() {
  const applied = [];
  let later = 0;
  const client = new MolamClient({
    apiKey: 'pk_primary', secretKey: env.PAYMENTS_SECRET_KEY, baseUrl: env.PAYMENTS_URL, timeout: 5000,
    selfhealUrl: env.MOLAM_SELFHEAL_URL, selfhealToken: env.MOLAM_SELFHEAL_TOKEN,
    trustedKeys: JSON.parse(env.TRUSTED_KEYS), reportInterval: 50, clock: () => Date.now() + later,
    onPatchApplied: (patch) => applied.push(patch.id), logger: LOGGER,
  });
  for await (const line of readline.createInterface({ input: process.stdin })) {
    const command = JSON.parse(line);
    let answer;
    if (command.op === 'pay') {
      later = command.later_ms || 0;
      let payment = null;
      let error = null;
      try {
        payment = await client.createPayment({ amount: 100, currency: command.currency, country: 'SN' });
      } catch (failure) {
        error = { name: failure.name, status: failure.status, code: failure.code };
      }
      answer = { payment, error, applied: [...applied] };
    } else if (command.op === 'pending') {
      answer = { pending: client.pendingReports };
    } else if (command.op === 'flush') {
      answer = { flushed: await client.flushReports() };
    } else {
      throw new Error(`unknown command ${line}`);
    }
    answer.warnings = warnings;
    warnings = [];
    console.log(JSON.stringify(answer));
  }
  await client.close();
}

main().catch((failure) => {
  console.error(failure);
  process.exitCode = 1;
});
