// Type-checked by `npm test` (tsc --noEmit): the package's types, used as an ES module.
import { ApiError, MolamClient, MolamTimeout, keyId, type AppliedPatch } from '@molam/sdk';

// The runbook's configuration example, with types.
const client = new MolamClient({
  apiKey: process.env.MOLAM_API_KEY,
  secretKey: process.env.MOLAM_SECRET_KEY,
  enableSelfHealing: true, // Activer auto-correction
  onPatchApplied: (patch) => {
    console.log('Patch appliqué:', patch.description);
  },
  timeout: 5000,
  trustedKeys: { [keyId('-----BEGIN PUBLIC KEY-----')]: '-----BEGIN PUBLIC KEY-----' },
  fallbackCredentials: { MOLAM_FALLBACK_API_KEY: 'pk_fallback' },
});
const history: AppliedPatch[] = client.getPatchHistory();
console.log('Patches appliqués:', history.map((patch) => [patch.id, patch.success, patch.appliedAt.toISOString()]));

try {
  const payment = await client.createPayment({ amount: 5000, currency: 'XOF', country: 'SN' });
  const again = await client.getPayment(payment.id);
  await client.refund(again.id, { amount: 1000 });
} catch (error) {
  if (error instanceof ApiError) console.log(error.status, error.code, error.retryAfter, error.errorText);
  if (error instanceof MolamTimeout) console.log(error.code satisfies 'ETIMEDOUT');
}
const timeoutMs: number = client.timeout;
const skew: number = client.state.clock_skew_seconds;
console.log(timeoutMs, skew, client.baseUrl, client.selfHealing, await client.flushReports());
await client.close();

// @ts-expect-error: amount is required
await client.createPayment({ currency: 'XOF' });
// @ts-expect-error: settings are changed by patches, not by callers
client.timeout = 1;

// The test double, as an application's test uses it.
import { FakeMolam, type FakeRequest } from '@molam/sdk/testing';

const fake = new FakeMolam({ envelopeTtl: 600 });
fake.payments.fail({ status: 401, code: 'api_key_revoked', when: (request: FakeRequest) => request.apiKey === 'pk' });
const patchId: string = fake.registry.addPatch('401', [{ op: 'use_primary_credential' }],
  { rollback: [{ op: 'use_primary_credential' }], severity: 'high' });
const faked: MolamClient = fake.client({ apiKey: 'pk', bootstrapEnvelopes: null });
await faked.getPayment(patchId).catch(() => null);
const reports: Array<Record<string, unknown>> = await fake.reports();
console.log(reports.length, fake.registry.envelopes()[0]?.format, fake.payments.requests.at(-1)?.host);
await fake.close();

// @ts-expect-error: severity is one of low, medium, high, critical
fake.registry.addPatch('401', [], { severity: 'urgent' });
