'use strict';
// The fixed table: the shared vectors (tests/vectors/operations.json), every operation covered,
// the table kept equal to the registry compiler's, and every Node sample patch applied.

const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const { test } = require('node:test');
const { isDeepStrictEqual } = require('node:util');

const { fallbackCredentials } = require('../src/config');
const { ConfigurationError, PatchRefused } = require('../src/errors');
const { ACTIONS, FILLABLE_FIELDS, FORMAT, FORMAT_VERSION, OPERATION_NAMES, SETTINGS, applyDocument, roundHalfEven } = require('../src/operations');
const { fromObject, toObject } = require('../src/state');
const { ROOT, python, vectors } = require('./support/world');

const OPERATIONS = vectors('operations.json');

function contextOf(data) {
  return { now: data.now, serverTime: data.server_time, hasCredential: (name) => data.credentials.includes(name),
    allowedHosts: new Set(data.allowed_hosts),
    credentials: fallbackCredentials('fallbackCredentials', data.fallback_credentials) };
}

for (const testCase of OPERATIONS.cases) {
  test(`operation vector: ${testCase.name}`, () => {
    const state = fromObject(testCase.initial_state || OPERATIONS.initial_state);
    const context = contextOf(testCase.context || OPERATIONS.context);
    if (testCase.expect.refused) {
      assert.throws(() => applyDocument(testCase.document, state, context), (error) => {
        assert.ok(error instanceof PatchRefused, error);
        if ('reason' in testCase.expect) assert.equal(error.message, testCase.expect.reason);
        return true;
      });
      assert.deepEqual(toObject(state), testCase.initial_state || OPERATIONS.initial_state); // unchanged
    } else {
      const applied = applyDocument(testCase.document, state, context);
      assert.deepEqual(toObject(applied.state), testCase.expect.state);
      // Same keys in the same order as the Python SDK's ClientState.as_dict().
      assert.deepEqual(Object.keys(applied.state), Object.keys(testCase.expect.state));
      assert.deepEqual(applied.logs, testCase.expect.logs);
      assert.deepEqual(applied.fill, testCase.expect.fill);
    }
  });
}

// The Python SDK's option names, renamed as the Node SDK spells its own.
const nodeOption = (option) => option.replace('fallback_credentials', 'fallbackCredentials');

for (const testCase of OPERATIONS.credential_options) {
  test(`fallbackCredentials option vector: ${testCase.name}`, () => {
    if ('reason' in testCase.expect) {
      assert.throws(() => fallbackCredentials('fallbackCredentials', testCase.value), (error) => {
        assert.ok(error instanceof ConfigurationError, error);
        assert.deepEqual([error.option, error.reason], [nodeOption(testCase.expect.option), testCase.expect.reason]);
        return true;
      });
    } else {
      const names = fallbackCredentials('fallbackCredentials', testCase.value);
      assert.deepEqual(testCase.expect.allows.filter((name) => !names.allows(name)), []);
      assert.deepEqual(testCase.expect.refuses.filter((name) => names.allows(name)), []);
    }
  });
}

test('a fallback credential outside the configured names is never read, even when set', () => {
  const names = fallbackCredentials('fallbackCredentials', null);
  const env = { MOLAM_FALLBACK_API_KEY: 'pk_fallback', AWS_SECRET_ACCESS_KEY: 'aws', MOLAM_SELFHEAL_TOKEN: 'tok' };
  assert.equal(names.value('MOLAM_FALLBACK_API_KEY', env), 'pk_fallback');
  assert.equal(names.value('AWS_SECRET_ACCESS_KEY', env), null);
  assert.equal(names.value('MOLAM_SELFHEAL_TOKEN', env), null);
  assert.equal(names.value('toString', env), null);
});

test('the vectors cover every operation and setting', () => {
  const applied = OPERATIONS.cases.filter((c) => !c.expect.refused);
  const operations = new Set(applied.flatMap((c) => c.document.operations.map((op) => op.op)));
  const settings = new Set(applied.flatMap((c) => c.document.operations.filter((op) => op.op === 'set')
    .map((op) => op.setting)));
  assert.deepEqual([...operations].sort(), [...OPERATION_NAMES].sort());
  assert.deepEqual([...settings].sort(), [...SETTINGS.keys()].sort());
});

test('a refused document changes nothing, and names in the table cannot reach the prototype', () => {
  const state = fromObject(OPERATIONS.initial_state);
  const context = contextOf(OPERATIONS.context);
  const document = (...operations) => ({ format: FORMAT, version: FORMAT_VERSION, operations });
  assert.throws(() => applyDocument(document({ op: 'set', setting: 'timeout_ms', value: 30000 },
    { op: 'eval', code: "require('fs')" }), state, context), /unknown operation "eval"/);
  assert.equal(state.timeout_ms, 10000);
  for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
    assert.throws(() => applyDocument(document({ op: name }), state, context), PatchRefused);
    assert.throws(() => applyDocument(document({ op: 'set', setting: name, value: 1 }), state, context), PatchRefused);
  }
  const polluted = JSON.parse('{"op": "fill_required_fields", "fields": {"__proto__": {"polluted": 1}}}');
  assert.throws(() => applyDocument(document(polluted), state, context), PatchRefused);
  assert.equal({}.polluted, undefined);
});

test('applying is bounded in time', () => {
  const document = { format: FORMAT, version: 1, operations: [{ op: 'clear_filled_fields' }, { op: 'clear_filled_fields' }] };
  assert.throws(() => applyDocument(document, fromObject(OPERATIONS.initial_state), contextOf(OPERATIONS.context),
    { budgetMs: -1 }), /longer than/);
});

test('the measured clock skew rounds as Python rounds (halves to even)', () => {
  assert.deepEqual([0.5, 1.5, 2.5, -0.5, -1.5, 119.4, 119.6].map(roundHalfEven), [0, 2, 2, 0, -2, 119, 120]);
});

// The registry's side, from the project's Python: its table, and the Node samples compiled.
const REGISTRY = `
import json, pathlib, yaml
from selfheal.core.patchlang import operations as r
from selfheal.core.patchlang.compiler import compile_patch
samples = {}
for path in sorted(pathlib.Path("samples").glob("node-*.yaml")):
    spec = yaml.safe_load(path.read_text())["spec"]
    samples[path.stem] = [json.loads(compile_patch(language="node", code=spec[key]).canonical_json())
                          for key in ("patchCode", "rollbackCode")]
print(json.dumps({"format": r.FORMAT, "version": r.FORMAT_VERSION, "max": r.MAX_OPERATIONS,
                  "fillable": list(r.FILLABLE_FIELDS),
                  "settings": sorted(s.key for s in r.SETTINGS),
                  "actions": {a.key: sorted(p.key for p in (*a.positional, *a.options)) for a in r.ACTIONS},
                  "samples": samples}))
`;

let registry;
function registrySide() {
  registry ??= JSON.parse(execFileSync(python(), ['-c', REGISTRY], { cwd: ROOT, encoding: 'utf8' }));
  return registry;
}

test('the table is the registry compiler\'s table', () => {
  const side = registrySide();
  assert.deepEqual([side.format, side.version], [FORMAT, FORMAT_VERSION]);
  assert.deepEqual([...SETTINGS.keys()].sort(), side.settings);
  assert.deepEqual(Object.fromEntries([...ACTIONS].map(([key, action]) => [key, Object.keys(action.params).sort()])),
    side.actions);
  assert.deepEqual([...FILLABLE_FIELDS.keys()], side.fillable);
});

test('every Node sample compiles to documents this SDK applies, patch then rollback', () => {
  const side = registrySide();
  const names = Object.keys(side.samples);
  assert.equal(names.length, 7);
  const context = contextOf(OPERATIONS.context);
  for (const name of names) {
    const [patch, rollback] = side.samples[name];
    const initial = fromObject(OPERATIONS.initial_state);
    const applied = applyDocument(patch, initial, context);
    // Each does something: changes the settings, or fills the retried call's missing fields.
    assert.ok(Object.keys(applied.fill).length > 0 || !isDeepStrictEqual(toObject(applied.state), toObject(initial)),
      name);
    applyDocument(rollback, applied.state, context);
  }
  const econnrefused = side.samples['node-econnrefused-backup-api'];
  const applied = applyDocument(econnrefused[0], fromObject(OPERATIONS.initial_state), context);
  assert.equal(applied.state.base_url, 'https://api-backup.molam.com');
  assert.deepEqual(applied.logs, [['warning', '⚡ Fallback to backup API']]);
});
