'use strict';
// A bad option throws ConfigurationError at construction, naming the option and the reason: the
// shared cases (tests/vectors/configuration.json, run by the Python SDK too) and the rest.

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { test } = require('node:test');

const sdk = require('..');
const { ConfigurationError, MolamClient, MolamError } = sdk;
const { TRUSTED } = require('./support/keys');
const { recordingLogger, vectors } = require('./support/world');

const CONFIGURATION = vectors('configuration.json');
// The vectors name options as the Python SDK does; the same option here, in both options and reasons.
const NAMES = { api_key: 'apiKey', secret_key: 'secretKey', base_url: 'baseUrl', trusted_keys: 'trustedKeys',
  selfheal_token: 'selfhealToken', selfheal_url: 'selfhealUrl', bootstrap_envelopes: 'bootstrapEnvelopes',
  enable_self_healing: 'enableSelfHealing' };
const rename = (text) => text.replace(/\b[a-z]+(?:_[a-z]+)+\b/g, (name) => NAMES[name] || name);

function quietly(options) {
  return new MolamClient({ logger: recordingLogger(), ...options });
}

for (const testCase of CONFIGURATION.cases) {
  test(`configuration vector: ${testCase.name}`, async () => {
    const options = { apiKey: 'pk_test', secretKey: 'sk_test' };
    for (const [name, value] of Object.entries(testCase.options)) options[NAMES[name]] = value;
    const cwd = process.cwd();
    process.chdir(fs.mkdtempSync(path.join(os.tmpdir(), 'molam-config-'))); // relative paths: an empty directory
    try {
      const { expect } = testCase;
      if ('self_healing' in expect) {
        const client = quietly(options);
        assert.equal(client.selfHealing, expect.self_healing);
        await client.close();
        return;
      }
      assert.throws(() => quietly(options), (error) => {
        assert.ok(error instanceof ConfigurationError && error instanceof MolamError);
        assert.equal(error.option, rename(expect.option));
        if ('reason' in expect) assert.equal(error.reason, rename(expect.reason));
        else assert.ok(error.reason.startsWith(rename(expect.reason_prefix)), error.reason);
        assert.equal(error.message, `${error.option}: ${error.reason}`);
        return true;
      });
    } finally {
      process.chdir(cwd);
    }
  });
}

test('ConfigurationError is exported from both entry points', async () => {
  const esm = await import('../index.mjs');
  assert.equal(esm.ConfigurationError, ConfigurationError);
  assert.equal(new ConfigurationError('is wrong', { option: 'apiKey' }).message, 'apiKey: is wrong');
});

test('a private key pinned by mistake is refused without being used', () => {
  const { privateKey } = crypto.generateKeyPairSync('ed25519');
  const pem = privateKey.export({ format: 'pem', type: 'pkcs8' });
  assert.throws(() => quietly({ apiKey: 'pk', secretKey: 'sk', selfhealToken: 't', trustedKeys: { k1: pem } }),
    { message: 'trustedKeys: key "k1": is a private key: pin the public key (`selfheal keygen` prints it)' });
});

test('the token and registry URL from the environment are named as such', () => {
  process.env.MOLAM_SELFHEAL_TOKEN = 'dev-token';
  try {
    assert.throws(() => quietly({ apiKey: 'pk', secretKey: 'sk' }), (error) => error.option === 'trustedKeys'
      && error.reason.includes('with a MOLAM_SELFHEAL_TOKEN'));
    process.env.MOLAM_SELFHEAL_TOKEN = 'dev token';
    assert.throws(() => quietly({ apiKey: 'pk', secretKey: 'sk', trustedKeys: TRUSTED }),
      { option: 'MOLAM_SELFHEAL_TOKEN' });
    process.env.MOLAM_SELFHEAL_TOKEN = 'dev-token';
    process.env.MOLAM_SELFHEAL_URL = 'devportal:8140';
    assert.throws(() => quietly({ apiKey: 'pk', secretKey: 'sk', trustedKeys: TRUSTED }),
      { option: 'MOLAM_SELFHEAL_URL', reason: 'must be an http:// or https:// URL with a host' });
  } finally {
    delete process.env.MOLAM_SELFHEAL_TOKEN;
    delete process.env.MOLAM_SELFHEAL_URL;
  }
});

for (const timeout of [0, -1, 120001, '10000', true]) {
  test(`timeout ${JSON.stringify(timeout)} is out of bounds`, () => {
    assert.throws(() => quietly({ apiKey: 'pk', secretKey: 'sk', timeout, enableSelfHealing: false }),
      { message: 'timeout: must be between 0 and 120000 milliseconds' });
  });
}

test('nothing of self-healing configured only warns, as the runbook example expects', () => {
  const logger = recordingLogger();
  const client = new MolamClient({ apiKey: 'pk', secretKey: 'sk', enableSelfHealing: true, logger });
  assert.equal(client.selfHealing, false);
  assert.match(logger.text(), /self-healing disabled: it needs selfhealToken and trustedKeys/);
});

test('the keyId helper names what is wrong', () => {
  assert.throws(() => sdk.keyId('-----BEGIN PUBLIC KEY-----'),
    { message: 'trustedKeys: public key: is not a PEM public key' });
});
