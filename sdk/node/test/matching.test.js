'use strict';
// Which held patch answers an error (bootstrap patches, the fake registry): the shared cases of
// tests/vectors/matching.json, which the Python SDK's tests also check against the registry's rules.

const assert = require('node:assert/strict');
const { test } = require('node:test');

const { bestMatch } = require('../src/matching');
const { vectors } = require('./support/world');

const MATCHING = vectors('matching.json');
const PATCHES = MATCHING.patches.map((patch) => ({ id: patch.id, errorSignature: patch.error_signature,
  severity: patch.severity, sequence: patch.sequence }));

for (const testCase of MATCHING.cases) {
  test(`matching vector: ${testCase.name}`, () => {
    const found = bestMatch(PATCHES, testCase.error);
    assert.deepEqual(found === null ? null : { patch_id: found.patch.id, kind: found.kind }, testCase.expect);
  });
}
