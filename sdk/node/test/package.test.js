'use strict';
// The package as a user gets it: the runbook's JavaScript example pasted unchanged after
// `const { MolamClient } = require('@molam/sdk');`, ES modules and CommonJS, no runtime
// dependency, the no-dynamic-code lint, and a short script that exits at once yet reports.

const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { after, before, test } = require('node:test');
const { promisify } = require('node:util');

const { TRUSTED } = require('./support/keys');
const { RegistryStub, TOKEN } = require('./support/registry-stub');
const { PaymentsServer, ROOT } = require('./support/world');

const run = promisify(execFile);
const PACKAGE = path.resolve(__dirname, '..');
const RUNBOOK = path.join(ROOT, 'docs', 'runbook.fr.md');

/** The runbook's ```javascript block of its "Configuration SDK" section, exactly as written. */
function runbookExample() {
  const text = fs.readFileSync(RUNBOOK, 'utf8');
  const section = text.slice(text.indexOf('## ⚙️ Configuration SDK'));
  const match = /```javascript\n([\s\S]*?)```/.exec(section);
  assert.ok(match, 'the runbook has a JavaScript configuration example');
  return match[1];
}

let project; // a directory where @molam/sdk is installed as a user has it (node_modules/@molam/sdk)

before(() => {
  project = fs.mkdtempSync(path.join(os.tmpdir(), 'molam-sdk-user-'));
  fs.mkdirSync(path.join(project, 'node_modules', '@molam'), { recursive: true });
  fs.symlinkSync(PACKAGE, path.join(project, 'node_modules', '@molam', 'sdk'), 'dir');
});

after(() => fs.rmSync(project, { recursive: true, force: true }));

function node(file, env = {}) {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('MOLAM_')));
  return run(process.execPath, [file], { cwd: project, env: { ...clean, ...env }, timeout: 20000 });
}

test('the runbook\'s JavaScript configuration example, pasted unchanged, runs', async () => {
  const example = runbookExample();
  assert.match(example, /new MolamClient\(\{[\s\S]*enableSelfHealing: true[\s\S]*client\.getPatchHistory\(\)/);
  const file = path.join(project, 'runbook-example.js');
  fs.writeFileSync(file, `const { MolamClient } = require('@molam/sdk');\n${example}`);
  const started = performance.now();
  const { stdout, stderr } = await node(file, { MOLAM_API_KEY: 'pk_test_runbook', MOLAM_SECRET_KEY: 'sk_test_runbook' });
  assert.equal(stdout, 'Patches appliqués: []\n');
  // No token or pinned key in that example's environment: it says self-healing stays off.
  assert.match(stderr, /self-healing disabled: it needs selfhealToken and trustedKeys/);
  assert.ok(performance.now() - started < 5000, 'the script exits at once (no timer holds it)');
});

test('the same example as an ES module gets the same classes', async () => {
  const file = path.join(project, 'runbook-example.mjs');
  fs.writeFileSync(file, `import { MolamClient } from '@molam/sdk';
import { createRequire } from 'node:module';
const required = createRequire(import.meta.url)('@molam/sdk');
if (required.MolamClient !== MolamClient) throw new Error('two copies of the SDK');
${runbookExample()}`);
  const { stdout } = await node(file, { MOLAM_API_KEY: 'pk', MOLAM_SECRET_KEY: 'sk' });
  assert.equal(stdout, 'Patches appliqués: []\n');
});

test('a script that heals a call exits at once and still sends its report', async () => {
  const payments = await PaymentsServer.start();
  const registry = await new RegistryStub().start();
  try {
    await payments.behave({ revoked_keys: ['pk_primary'] });
    registry.add('401', [{ op: 'use_fallback_credential', name: 'MOLAM_FALLBACK_API_KEY' }],
      [{ op: 'use_primary_credential' }], { description: 'Injection clé API fallback sur 401' });
    const file = path.join(project, 'heal-once.js');
    fs.writeFileSync(file, `const { MolamClient } = require('@molam/sdk');
const client = new MolamClient({
  apiKey: 'pk_primary', secretKey: 'sk_test_secret', baseUrl: process.env.PAYMENTS_URL,
  selfhealUrl: process.env.MOLAM_SELFHEAL_URL, trustedKeys: JSON.parse(process.env.TRUSTED_KEYS),
  reportInterval: 60000, // no batch before exit: only the last try when the event loop empties
  onPatchApplied: (patch) => console.log('Patch appliqué:', patch.description),
});
client.createPayment({ amount: 5000, currency: 'XOF', country: 'SN' })
  .then((payment) => console.log(payment.status, client.getPatchHistory().length));
`);
    const { stdout, stderr } = await node(file, { PAYMENTS_URL: payments.url, MOLAM_SELFHEAL_URL: registry.url,
      MOLAM_SELFHEAL_TOKEN: TOKEN, MOLAM_FALLBACK_API_KEY: 'pk_fallback', TRUSTED_KEYS: JSON.stringify(TRUSTED) });
    assert.equal(stdout, 'Patch appliqué: Injection clé API fallback sur 401\nsucceeded 1\n');
    assert.match(stderr, /⚡ Molam SDK applied self-healing patch p-401/);
    assert.deepEqual(registry.reports.map((report) => [report.patch_id, report.sdk, report.success]),
      [['p-401', 'node', true]]);
  } finally {
    await registry.stop();
    await payments.stop();
  }
});

test('no runtime dependency: the source requires only Node built-ins and its own files', () => {
  const manifest = JSON.parse(fs.readFileSync(path.join(PACKAGE, 'package.json'), 'utf8'));
  assert.equal(manifest.dependencies, undefined);
  assert.equal(manifest.peerDependencies, undefined);
  assert.equal(manifest.optionalDependencies, undefined);
  for (const name of fs.readdirSync(path.join(PACKAGE, 'src'))) {
    const source = fs.readFileSync(path.join(PACKAGE, 'src', name), 'utf8');
    for (const [, target] of source.matchAll(/require\('([^']+)'\)/g)) {
      assert.match(target, /^(node:|\.\/)/, `${name} requires ${target}`);
    }
  }
});

test('the lint fails on dynamic code and passes the SDK', async () => {
  const lint = path.join(PACKAGE, 'scripts', 'lint.js');
  await run(process.execPath, [lint]); // the SDK itself: clean
  const samples = {
    'eval.js': 'eval(code);',
    'function.js': 'const f = new Function("return 1");',
    'function-call.js': 'const f = Function("return 1");',
    'vm.js': "const vm = require('node:vm');",
    'vm-esm.mjs': "import vm from 'vm';",
    'dynamic-require.js': 'const m = require(name);',
    'template-require.js': 'const m = require(`./${name}`);',
    'import.mjs': 'const m = await import(name);',
    'timer.js': 'setTimeout("run()", 10);',
    'constructor.js': 'const f = (() => {}).constructor("return 1");',
  };
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'molam-lint-'));
  try {
    for (const [name, code] of Object.entries(samples)) {
      const file = path.join(directory, name);
      fs.writeFileSync(file, `'use strict';\n${code}\n`);
      await assert.rejects(run(process.execPath, [lint, file]), (error) => {
        assert.equal(error.code, 1, name);
        assert.match(error.stderr, new RegExp(`${name}:2: .* is not allowed`));
        return true;
      });
    }
  } finally {
    fs.rmSync(directory, { recursive: true, force: true });
  }
});
