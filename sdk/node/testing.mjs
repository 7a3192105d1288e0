// ES module entry of @molam/sdk/testing: the CommonJS implementation, re-exported (one copy, one MolamClient).
import testing from './src/testing.js';

export const { FakeMolam, FakePayments, FakeRegistry, FakeRequest, FakeTransport, SELFHEAL_URL } = testing;
