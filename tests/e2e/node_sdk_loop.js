'use strict';
// The Node SDK's side of the end-to-end loop (tests/e2e/test_node_sdk_loop.py runs it): one
// payment call through @molam/sdk, healed (or not) by the real registry API. Settings come from
// the environment; the outcome is printed as one JSON line on stdout.

const { MolamClient } = require('../../sdk/node');

const env = process.env;

async function main() {
  const applied = [];
  const client = new MolamClient({
    apiKey: 'pk_primary', secretKey: env.PAYMENTS_SECRET_KEY, baseUrl: env.PAYMENTS_URL, timeout: 2000,
    selfhealUrl: env.MOLAM_SELFHEAL_URL, selfhealToken: env.MOLAM_SELFHEAL_TOKEN,
    trustedKeys: JSON.parse(env.TRUSTED_KEYS), fallbackCredentials: { MOLAM_FALLBACK_API_KEY: 'pk_fallback' },
    reportInterval: 50, onPatchApplied: (patch) => applied.push(patch),
  });
  const attempts = Number(env.ATTEMPTS || 1); // the registry API may not have loaded the patch yet
  let payment = null;
  let error = null;
  for (let attempt = 0; attempt < attempts && payment === null; attempt += 1) {
    try {
      payment = await client.createPayment({ amount: 5000, currency: 'XOF', country: 'SN' });
      error = null;
    } catch (failure) {
      error = { name: failure.name, status: failure.status, code: failure.code, errorText: failure.errorText };
      if (attempt + 1 < attempts) await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  const reported = await client.flushReports();
  await client.close();
  console.log(JSON.stringify({ payment, error, applied, history: client.getPatchHistory(), reported,
    credential: client.credential }));
}

main().catch((failure) => {
  console.error(failure);
  process.exitCode = 1;
});
