// Type-checked by `npm test` (tsc --noEmit): the package's types, required from CommonJS.
import { MolamClient, MolamError } from '@molam/sdk';

const client = new MolamClient({ apiKey: 'pk', secretKey: 'sk', enableSelfHealing: false });
client.createPayment({ amount: 1, currency: null }).catch((error: unknown) => {
  if (error instanceof MolamError) console.log(error.errorText, error.status);
});
export const history = client.getPatchHistory().map((patch) => patch.rollbackTriggered);

import { FakeMolam } from '@molam/sdk/testing';
import { ConfigurationError } from '@molam/sdk';

export const fakeClient = new FakeMolam().client({ apiKey: 'pk_test' });
export const option: string | null = new ConfigurationError('is wrong', { option: 'apiKey' }).option;
