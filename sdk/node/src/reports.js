'use strict';
// Outcome reports, buffered and sent in batches by an unref'd timer, off the caller's path.
//
// Reports the API cannot take now (down, 5xx, 503 "buffer full") stay in the buffer and go
// with a later batch, while the interval backs off so a dead registry is not hammered. The
// buffer is bounded: when full, the oldest report is dropped and counted. The timer never keeps
// a process alive; when the event loop empties ('beforeExit'), what is buffered gets one last
// try, so a short script still reports.

const pendingQueues = new Set();
let exitHookInstalled = false;

function installExitHook() {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('beforeExit', () => {
    for (const queue of [...pendingQueues]) {
      pendingQueues.delete(queue); // one last try each: a dead registry must not keep a process alive
      if (queue.pending > 0) queue.flush().catch(() => {});
    }
  });
}

class ReportQueue {
  constructor(send, { capacity = 10000, batchSize = 100, intervalMs = 1000, maxIntervalMs = 30000, logger = console } = {}) {
    this.send = send; // async (batch) => true: done with the batch; false: keep it
    this.capacity = capacity;
    this.batchSize = batchSize;
    this.intervalMs = intervalMs;
    this.maxIntervalMs = maxIntervalMs;
    this.logger = logger;
    this.buffer = [];
    this.dropped = 0;
    this.delayMs = intervalMs;
    this.timer = null;
    this.flushing = null;
    this.closed = false;
  }

  get pending() {
    return this.buffer.length;
  }

  offer(report) {
    if (this.buffer.length >= this.capacity) {
      this.buffer.shift();
      this.dropped += 1;
      if (this.dropped === 1 || this.dropped % 1000 === 0) {
        this.logger.warn(`self-heal report buffer full: ${this.dropped} oldest reports dropped`);
      }
    }
    this.buffer.push(report);
    if (this.closed) return;
    pendingQueues.add(this);
    installExitHook();
    if (this.buffer.length >= this.batchSize) this.schedule(0);
    else if (this.timer === null) this.schedule(this.delayMs);
  }

  schedule(delayMs) {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.tick(), delayMs);
    this.timer.unref();
  }

  async tick() {
    this.timer = null;
    let sent;
    try {
      sent = await this.flush();
    } catch (error) {
      this.logger.error(`self-heal reports: unexpected error while sending: ${error && error.message}`);
      sent = false;
    }
    this.delayMs = sent ? this.intervalMs : Math.min(this.delayMs * 2, this.maxIntervalMs);
    if (!this.closed && this.buffer.length > 0 && this.timer === null) this.schedule(this.delayMs);
  }

  /** Send everything buffered now; resolves true when the buffer is empty. One flush at a time. */
  flush() {
    if (this.flushing === null) {
      this.flushing = this.drain().finally(() => {
        this.flushing = null;
      });
    }
    return this.flushing;
  }

  async drain() {
    for (;;) {
      const batch = this.buffer.slice(0, this.batchSize);
      if (batch.length === 0) {
        pendingQueues.delete(this);
        return true;
      }
      if (!(await this.send(batch))) return false;
      // Only the batch's own reports: a full buffer may have dropped some meanwhile.
      const sent = new Set(batch);
      while (this.buffer.length > 0 && sent.has(this.buffer[0])) this.buffer.shift();
    }
  }

  /** Stop the timer after one last flush, waiting at most `timeoutMs`. */
  async close({ timeoutMs = 2000 } = {}) {
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    pendingQueues.delete(this);
    let timeout;
    const late = new Promise((resolve) => {
      timeout = setTimeout(() => resolve(false), timeoutMs);
      timeout.unref();
    });
    try {
      return await Promise.race([this.flush(), late]);
    } finally {
      clearTimeout(timeout);
    }
  }
}

module.exports = { ReportQueue };
