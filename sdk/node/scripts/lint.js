#!/usr/bin/env node
'use strict';
// The SDK's one lint rule, run by `npm test` before the tests: nothing in the shipped source can
// turn text from the wire into code or a module name. Patches are data, applied from a fixed
// table; eval, new Function, vm, dynamic require/import, string timers and child processes
// have no place here. Usage: node scripts/lint.js [FILE|DIR…] (default: the package's source).

const fs = require('node:fs');
const path = require('node:path');

const RULES = [
  [/\beval\s*\(/, 'eval'],
  [/\bnew\s+Function\b|(?<![.\w$])Function\s*\(/, 'the Function constructor'],
  [/\b(?:Async|Generator|AsyncGenerator)Function\b/, 'a Function constructor'],
  [/\.constructor\s*\(/, 'a constructor reached through .constructor'],
  [/\brequire\s*\(\s*['"](?:node:)?(?:vm|child_process|worker_threads|module|inspector)['"]/, 'a code-loading module'],
  [/\bfrom\s+['"](?:node:)?(?:vm|child_process|worker_threads|module|inspector)['"]/, 'a code-loading module'],
  [/\brequire\s*\(\s*(?!['"][^'"`$]+['"]\s*\))/, 'a dynamic require (only string literals)'],
  [/\brequire\s*\.\s*(?:resolve|cache|main)\b|\bmodule\s*\.\s*require\b|\bcreateRequire\b/, 'module loading'],
  [/(?<![.\w$])import\s*\(/, 'a dynamic import()'],
  [/\bset(?:Timeout|Interval|Immediate)\s*\(\s*['"`]/, 'a timer given a string'],
  [/\bWebAssembly\b/, 'WebAssembly'],
  [/\bprocess\s*\.\s*(?:binding|dlopen|_linkedBinding)\b/, 'native bindings'],
];

function files(target) {
  const stat = fs.statSync(target);
  if (stat.isFile()) return [target];
  return fs.readdirSync(target, { withFileTypes: true }).flatMap((entry) => (
    entry.isDirectory() ? files(path.join(target, entry.name))
      : /\.(?:c|m)?js$/.test(entry.name) ? [path.join(target, entry.name)] : []));
}

function lint(targets) {
  const problems = [];
  for (const file of targets.flatMap(files)) {
    fs.readFileSync(file, 'utf8').split('\n').forEach((line, index) => {
      for (const [pattern, what] of RULES) {
        if (pattern.test(line)) problems.push(`${file}:${index + 1}: ${what} is not allowed: ${line.trim()}`);
      }
    });
  }
  return problems;
}

if (require.main === module) {
  const root = path.resolve(__dirname, '..');
  const args = process.argv.slice(2);
  const targets = args.length > 0 ? args : [path.join(root, 'src'), path.join(root, 'index.mjs'),
    path.join(root, 'testing.mjs')];
  const problems = lint(targets);
  for (const problem of problems) console.error(problem);
  if (problems.length > 0) {
    console.error(`lint: ${problems.length} problem(s): the SDK must stay free of dynamic code`);
    process.exit(1);
  }
  console.log(`lint: ${targets.flatMap(files).length} files clean (no eval, Function, vm or dynamic require)`);
}

module.exports = { lint, RULES };
