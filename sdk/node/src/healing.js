'use strict';
// The self-healing loop: ask the registry, verify, apply, retry, roll back, tell, report.
//
// One failing call gets at most one patch. The patch changes the client's state in memory (the
// whole document or nothing); if the retried call still fails, the rollback document is applied
// at once (or, without one, the state from before the patch comes back). Every step that could
// let an unverified or malformed patch through fails closed: the caller then gets the original
// error, exactly as from an SDK without self-healing.

const { ReplayGuard, isExpired, openEnvelope } = require('./envelope');
const { isoOfMicros } = require('./payload');
const { MolamError, PatchRefused } = require('./errors');
const { bestMatch } = require('./matching');
const { applyDocument } = require('./operations');
const { RegistryUnavailable } = require('./registry');

const SDK = 'node';
const LOOKUP_TIMEOUT_CAP_MS = 5000; // the caller's own timeout when smaller
const MAX_CACHED_ERRORS = 256;
const LOG_METHODS = { debug: 'debug', info: 'info', warning: 'warn', error: 'error' };

function emit(logger, level, message) {
  const method = LOG_METHODS[level];
  if (typeof logger[method] === 'function') logger[method](message);
}

/** `registry` null: no registry configured, only the bootstrap patches (and no reports). */
class Healer {
  constructor({ registry, trusted, reports, onPatchApplied, clock, logger, replay = null, bootstrap = [],
    historySize = 1000 }) {
    this.registry = registry;
    this.trusted = trusted;
    this.reports = reports;
    this.onPatchApplied = onPatchApplied;
    this.clock = clock; // epoch milliseconds
    this.logger = logger;
    this.historySize = historySize;
    this.replay = replay || new ReplayGuard();
    this.lastVerified = new Map(); // "status|code" → the last verified patch, for when the registry is away
    // The bootstrap file's patches: they stand in while the registry cannot be asked.
    this.bootstrap = new Map(bootstrap.map((patch) => [patch.id, patch]));
    this.applied = [];
  }

  history() {
    return [...this.applied];
  }

  /**
   * The retried call's result once a patch healed it; otherwise rejects (with the original
   * error when no patch applied). `cell`: {get(), set(state)}; `retry`: async (fill) => result,
   * `fill` being the request fields the patch fills, for that call only.
   */
  async heal(error, { context, cell, retry, applyContext }) {
    const patch = await this.patchFor(error, context, {
      timeoutMs: Math.min(cell.get().timeout_ms, LOOKUP_TIMEOUT_CAP_MS) });
    if (patch === null) throw error;
    const before = cell.get();
    let applied;
    try {
      applied = applyDocument(patch.operations, before, applyContext);
    } catch (refusal) {
      if (!(refusal instanceof PatchRefused)) throw refusal;
      this.logger.warn(`Molam SDK refused self-healing patch ${patch.id} v${patch.version}: ${refusal.message}`);
      this.report(patch, error, context, { success: false, patchApplied: false, reason: refusal.message });
      throw error;
    }
    cell.set(applied.state);
    for (const [level, message] of applied.logs) emit(this.logger, level, message);
    this.logger.warn(`⚡ Molam SDK applied self-healing patch ${patch.id} v${patch.version} (${patch.description}) `
      + `for ${error.errorText}`);
    let result;
    try {
      result = await retry(applied.fill);
    } catch (failure) {
      if (!(failure instanceof MolamError)) throw failure;
      this.rollBack(patch, cell, before, applyContext);
      this.record(patch, error, context, { success: false, rollback: true });
      throw failure;
    }
    this.record(patch, error, context, { success: true, rollback: false });
    return result;
  }

  async patchFor(error, context, { timeoutMs }) {
    const key = `${error.status}|${error.code}`;
    if (this.registry === null) return this.fromBootstrap(error);
    const body = { sdk: SDK, error: error.errorText.slice(0, 2000), context };
    if (error.status != null) body.status = error.status;
    if (error.code) body.code = String(error.code).slice(0, 200);
    let served;
    try {
      served = await this.registry.lookup(body, { timeoutMs });
    } catch (why) {
      if (why instanceof RegistryUnavailable) {
        let cached = this.lastVerifiedFor(key);
        if (cached !== null) {
          this.logger.warn(`Molam SDK: self-heal registry unreachable (${why.message}); `
            + `using last verified patch ${cached.id}`);
          return cached;
        }
        cached = this.fromBootstrap(error);
        this.logger.warn(`Molam SDK: self-heal registry unreachable (${why.message}); `
          + `${cached ? `using bootstrap patch ${cached.id}` : 'no patch for this error'}`);
        if (cached === null) { // the registry never saw this miss: report it for the coverage query
          this.report(null, error, context, { success: false, patchApplied: false, reason: 'registry unreachable' });
        }
        return cached;
      }
      if (why instanceof PatchRefused) {
        this.logger.warn(`Molam SDK: no self-healing patch: ${why.message}`);
        return null;
      }
      throw why;
    }
    if (served === null) {
      this.forget(key, error);
      return null;
    }
    let patch;
    try {
      patch = openEnvelope(served.envelope, { trusted: this.trusted, replay: this.replay, now: this.clock() });
    } catch (why) {
      if (!(why instanceof PatchRefused)) throw why;
      this.logger.warn(`Molam SDK refused a self-healing envelope: ${why.message}`);
      this.report(null, error, context, { success: false, patchApplied: false, reason: why.message });
      return null;
    }
    patch = Object.freeze({ ...patch, receipt: served.receipt });
    if (this.lastVerified.has(key) || this.lastVerified.size < MAX_CACHED_ERRORS) this.lastVerified.set(key, patch);
    return patch;
  }

  /**
   * The patch last served for this error, while its envelope lasts: past `expires_at` the registry
   * may have switched it off long ago, so blocking the registry must not keep it alive.
   */
  lastVerifiedFor(key) {
    const cached = this.lastVerified.get(key);
    if (cached === undefined) return null;
    if (!isExpired(cached, this.clock())) return cached;
    this.logger.warn(`Molam SDK: last verified patch dropped: patch ${cached.id} envelope expired at `
      + `${isoOfMicros(cached.expiresAt)}`);
    this.lastVerified.delete(key);
    return null;
  }

  /**
   * The registry answered that no patch applies to this error (switched off, or gone): the patch it
   * last served for it stops everywhere, and so does every file patch matching it.
   */
  forget(key, error) {
    const cached = this.lastVerified.get(key);
    if (cached !== undefined) {
      for (const [other, patch] of [...this.lastVerified]) {
        if (patch.id === cached.id) this.lastVerified.delete(other);
      }
      this.bootstrap.delete(cached.id);
      this.logger.warn(`Molam SDK: the registry has no patch for ${error.errorText}: patch ${cached.id} dropped`);
    }
    // The registry, when it answers, wins over the file: a less specific file patch must not take
    // the place of the one dropped.
    let stale;
    while ((stale = this.fromBootstrap(error, { quiet: true })) !== null) {
      this.logger.warn(`Molam SDK: the registry has no patch for ${error.errorText}: `
        + `bootstrap patch ${stale.id} dropped`);
      this.bootstrap.delete(stale.id);
    }
  }

  /** The bootstrap patch for this error, by the registry's matching rules; expired ones are dropped. */
  fromBootstrap(error, { quiet = false } = {}) {
    const now = this.clock();
    for (const patch of [...this.bootstrap.values()]) {
      if (!isExpired(patch, now)) continue;
      this.logger.warn(`Molam SDK: bootstrap patch ${patch.id} expired at ${isoOfMicros(patch.expiresAt)}: dropped`);
      this.bootstrap.delete(patch.id);
    }
    const found = bestMatch(this.bootstrap.values(), { message: error.errorText.slice(0, 2000), status: error.status,
      code: error.code ? String(error.code).slice(0, 200) : null });
    if (found === null) {
      if (!quiet && this.registry === null) this.logger.warn(`Molam SDK: no bootstrap patch for ${error.errorText}`);
      return null;
    }
    return found.patch;
  }

  rollBack(patch, cell, before, applyContext) {
    if (patch.rollbackOperations === null) {
      cell.set(before);
    } else {
      try {
        cell.set(applyDocument(patch.rollbackOperations, cell.get(), applyContext).state);
      } catch (refusal) {
        // A rollback that cannot apply must still undo the patch.
        this.logger.error(`Molam SDK: rollback of ${patch.id} refused (${refusal.message}); `
          + 'restoring the previous settings');
        cell.set(before);
      }
    }
    this.logger.warn(`Molam SDK rolled back self-healing patch ${patch.id} v${patch.version}: the retried call failed`);
  }

  record(patch, error, context, { success, rollback }) {
    const applied = Object.freeze({
      id: patch.id, version: patch.version, description: patch.description, severity: patch.severity,
      errorSignature: patch.errorSignature, error: error.errorText, success, rollbackTriggered: rollback,
      appliedAt: new Date(),
    });
    this.applied.push(applied);
    if (this.applied.length > this.historySize) this.applied.shift();
    this.report(patch, error, context, { success, rollback });
    if (typeof this.onPatchApplied === 'function') {
      try {
        const outcome = this.onPatchApplied(applied);
        if (outcome && typeof outcome.catch === 'function') {
          outcome.catch((failure) => this.logger.error(`Molam SDK: onPatchApplied rejected: ${failure}`));
        }
      } catch (failure) { // the caller's callback must not turn a healed call into a failure
        this.logger.error(`Molam SDK: onPatchApplied threw: ${failure && failure.stack ? failure.stack : failure}`);
      }
    }
  }

  report(patch, error, context, { success, rollback = false, patchApplied = true, reason = null }) {
    if (this.reports === null) return; // no registry to report to
    if (patch !== null && !patch.receipt) {
      // A bootstrap patch was not served by the registry: it would refuse the report.
      this.logger.debug?.(`Molam SDK: outcome of ${patch.id} not reported (no registry receipt)`);
      return;
    }
    const report = {
      patch_id: patch ? patch.id : null, sdk: SDK, error: error.errorText.slice(0, 2000), success,
      rollback_triggered: rollback, patch_applied: patchApplied,
      context: reason ? { ...context, reason: reason.slice(0, 300) } : context,
      applied_at: new Date().toISOString(),
    };
    if (patch !== null) report.receipt = patch.receipt;
    this.reports.offer(report);
  }
}

module.exports = { Healer, SDK, LOOKUP_TIMEOUT_CAP_MS };
