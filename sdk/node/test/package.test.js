'use strict';
// The package as a user gets it: what `npm pack` puts in the tarball, installed from it (both
// entry points, CommonJS and ES modules, the README's testing example), the runbook's JavaScript
// example pasted unchanged after `const { MolamClient } = require('@molam/sdk');`, no runtime
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

/** The README's ```js block of its "Testing your code" section, exactly as written. */
function readmeTestingExample() {
  const text = fs.readFileSync(path.join(PACKAGE, 'README.md'), 'utf8');
  const match = /```js\n([\s\S]*?)```/.exec(text.slice(text.indexOf('## Testing your code')));
  assert.ok(match, 'the README has a JavaScript example in its testing section');
  return match[1];
}

async function npm(args, options = {}) {
  // npm's cache in a temporary directory: nothing read from or written to the user's.
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'molam-npm-cache-'));
  try {
    return await run('npm', args, { timeout: 60000, ...options, env: { ...process.env, npm_config_cache: cache,
      npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' } });
  } finally {
    fs.rmSync(cache, { recursive: true, force: true });
  }
}

test('npm pack: a publishable package with the sources, types, README and license, and nothing else', async () => {
  const manifest = JSON.parse(fs.readFileSync(path.join(PACKAGE, 'package.json'), 'utf8'));
  assert.equal(manifest.private, undefined);
  assert.equal(manifest.license, 'Apache-2.0');
  assert.match(fs.readFileSync(path.join(PACKAGE, 'LICENSE'), 'utf8'),
    /^\s*Apache License\s+Version 2\.0, January 2004/);
  assert.deepEqual(manifest.exports['./testing'],
    { types: './testing.d.ts', import: './testing.mjs', require: './src/testing.js' });
  const [packed] = JSON.parse((await npm(['pack', '--dry-run', '--json'], { cwd: PACKAGE })).stdout);
  const files = packed.files.map((file) => file.path).sort();
  const sources = fs.readdirSync(path.join(PACKAGE, 'src')).map((name) => `src/${name}`);
  assert.deepEqual(files, ['LICENSE', 'README.md', 'index.d.ts', 'index.mjs', 'package.json', ...sources,
    'testing.d.ts', 'testing.mjs'].sort());
  assert.ok(!files.some((file) => /^(test|node_modules|scripts)\//.test(file)), files.join(', '));
  // Every file an entry point names is in the tarball.
  for (const target of Object.values(manifest.exports).flatMap((entry) => (typeof entry === 'string' ? [entry]
    : Object.values(entry)))) {
    assert.ok(files.includes(target.replace(/^\.\//, '')), target);
  }
});

test('installed from its tarball, both entry points load as CommonJS and ES modules and the testing example runs',
  async () => {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'molam-packed-'));
    try {
      const { stdout } = await npm(['pack', '--json', '--pack-destination', work], { cwd: PACKAGE });
      const tarball = path.join(work, JSON.parse(stdout)[0].filename);
      const app = path.join(work, 'app');
      fs.mkdirSync(app);
      fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', private: true }));
      // --offline: the package has no runtime dependency, so nothing is fetched.
      await npm(['install', '--offline', '--ignore-scripts', tarball], { cwd: app });
      const installed = path.join(app, 'node_modules', '@molam', 'sdk');
      assert.ok(fs.existsSync(path.join(installed, 'LICENSE')) && !fs.existsSync(path.join(installed, 'test')));
      fs.writeFileSync(path.join(app, 'both.mjs'), `import { createRequire } from 'node:module';
import { FakeMolam } from '@molam/sdk/testing';
import { MolamClient } from '@molam/sdk';
const require = createRequire(import.meta.url);
const cjs = require('@molam/sdk/testing');
if (cjs.FakeMolam !== FakeMolam) throw new Error('two copies of the test double');
if (require('@molam/sdk').MolamClient !== MolamClient) throw new Error('two copies of the SDK');
if (!(new FakeMolam().client() instanceof MolamClient)) throw new Error('a fake client is not a MolamClient');
console.log(require.resolve('@molam/sdk/testing').endsWith('node_modules/@molam/sdk/src/testing.js'));
`);
      assert.equal((await run(process.execPath, ['both.mjs'], { cwd: app })).stdout, 'true\n');
      fs.writeFileSync(path.join(app, 'checkout.test.js'), readmeTestingExample());
      // Not as a child of this test run (NODE_TEST_CONTEXT): as the application's own `node --test`.
      const { NODE_TEST_CONTEXT, ...env } = process.env;
      const { stdout: report } = await run(process.execPath, ['--test', '--test-reporter=tap', 'checkout.test.js'],
        { cwd: app, env, timeout: 30000 });
      assert.match(report, /^# pass 1$/m);
      assert.match(report, /^# fail 0$/m);
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
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
