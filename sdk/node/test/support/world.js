'use strict';
// What the tests share with the Python SDK's: the repository's vectors, its Python, its
// payments test server (tests/sdk/payments_server.py) run as a child process.

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const readline = require('node:readline');

// The SDK reads proxies and registry settings from the environment: the tests set their own.
for (const name of Object.keys(process.env)) {
  if (name.toLowerCase().endsWith('_proxy') || name.startsWith('MOLAM_')) delete process.env[name];
}

const ROOT = path.resolve(__dirname, '../../../..');
const VECTORS = path.join(ROOT, 'tests', 'vectors');

function vectors(name) {
  return JSON.parse(fs.readFileSync(path.join(VECTORS, name), 'utf8'));
}

/** The project's Python: $PYTHON, else the checkout's .venv (make install), else python3. */
function python() {
  if (process.env.PYTHON) return process.env.PYTHON;
  const venv = path.join(ROOT, '.venv', 'bin', 'python');
  return fs.existsSync(venv) ? venv : 'python3';
}

/** Start `python -m <module> ...args` from the checkout; resolves {process, line}: its first stdout line. */
function startPython(module, args = [], { env = {} } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(python(), ['-m', module, ...args], { cwd: ROOT, env: { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk) => { stderr += chunk; });
    const lines = readline.createInterface({ input: child.stdout });
    const timer = setTimeout(() => { child.kill(); reject(new Error(`${module} did not start:\n${stderr}`)); }, 20000);
    lines.once('line', (line) => {
      clearTimeout(timer);
      resolve({ process: child, line, lines, stderr: () => stderr });
    });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${module} exited ${code}:\n${stderr}`)); });
  });
}

/** The test forward proxy (tests/sdk/proxy_server.py): `seen` fills with {method, target, authorized}. */
class ProxyProcess {
  static async start({ credentials = null } = {}) {
    const started = await startPython('tests.sdk.proxy_server', credentials ? ['--credentials', credentials] : []);
    return new ProxyProcess(started.process, started.line.trim(), started.lines);
  }

  constructor(child, url, lines) {
    this.child = child;
    this.url = url;
    this.seen = [];
    child.removeAllListeners('exit');
    lines.on('line', (line) => this.seen.push(JSON.parse(line)));
  }

  async stop() {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.stdin.end();
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 3000))]);
    if (this.child.exitCode === null) {
      this.child.kill('SIGKILL');
      await exited;
    }
  }
}

/** The payments test server (Python, real HTTP) with its /_test/ control routes. */
class PaymentsServer {
  static async start() {
    const started = await startPython('tests.sdk.payments_server', ['--port', '0']);
    return new PaymentsServer(started.process, started.line.trim());
  }

  constructor(child, url) {
    this.child = child;
    this.url = url;
    this.secretKey = 'sk_test_secret';
    child.removeAllListeners('exit');
  }

  async control(method, route, body) {
    const response = await fetch(`${this.url}/_test/${route}`, { method,
      body: body === undefined ? undefined : JSON.stringify(body) });
    if (!response.ok) throw new Error(`payments server ${route}: ${response.status} ${await response.text()}`);
    return response.json();
  }

  reset() { return this.control('POST', 'reset', {}); }

  behave(changes) { return this.control('POST', 'behaviour', changes); }

  state() { return this.control('GET', 'state'); }

  async stop() {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.stdin.end(); // it serves until its stdin closes
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 3000))]);
    if (this.child.exitCode === null) {
      this.child.kill('SIGKILL');
      await exited;
    }
  }
}

async function waitUntil(condition, { timeoutMs = 5000, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`${what} not met in time`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A logger that keeps every line, by level. */
function recordingLogger() {
  const lines = [];
  const at = (level) => (...parts) => lines.push([level, parts.join(' ')]);
  return { lines, debug: at('debug'), info: at('info'), log: at('info'), warn: at('warn'), error: at('error'),
    text: () => lines.map(([, line]) => line).join('\n') };
}

module.exports = { ROOT, VECTORS, vectors, python, startPython, PaymentsServer, ProxyProcess, waitUntil,
  recordingLogger };
