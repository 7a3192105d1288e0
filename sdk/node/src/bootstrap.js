'use strict';
// Patches a client starts with: signed envelopes read from a file (`bootstrapEnvelopes: PATH`),
// as the Python SDK's molam/bootstrap.py.
//
// The file holds what the registry serves: a JSON list of envelopes (`selfheal.patch.v1`) or of
// the registry's answers ({"patch", "envelope"}, as POST /api/dev/self-heal returns them), or an
// object {"envelopes": [...]}; a single envelope or answer is a list of one.
//
// Each envelope is verified exactly as a served one: a pinned key signed its exact bytes, it has
// not expired, it is for this SDK's language, it is no older than one already accepted. One that
// fails is skipped with a warning naming the file, the entry and the reason, and the client
// starts without it: a stale or tampered file must neither stop an application from starting nor
// give it an unverified patch. A file that cannot be read, or is not such a document, is a
// ConfigurationError: that is the application's own configuration, wrong from the start.

const fs = require('node:fs');
const { ENVELOPE_FORMAT, openEnvelope } = require('./envelope');
const { ConfigurationError, PatchRefused } = require('./errors');

const OPTION = 'bootstrapEnvelopes';
// The C library's words for the usual failures, as the Python SDK says them.
const STRERROR = { ENOENT: 'No such file or directory', EACCES: 'Permission denied', EISDIR: 'Is a directory',
  ENOTDIR: 'Not a directory', EPERM: 'Operation not permitted' };

function isObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function entriesOf(document) {
  if (Array.isArray(document)) return document;
  if (isObject(document)) {
    if ('envelopes' in document) return Array.isArray(document.envelopes) ? document.envelopes : null;
    if ('format' in document || 'envelope' in document) return [document];
  }
  return null;
}

/** An envelope, or the envelope of a registry answer. */
function envelopeOf(entry) {
  return isObject(entry) && 'envelope' in entry && entry.format !== ENVELOPE_FORMAT ? entry.envelope : entry;
}

/**
 * {source, patches, skipped}: the file's verified patches (the newest per id) and the reasons
 * of the skipped entries ("entry N: reason", also logged on `logger.warn`). `now`: epoch ms.
 */
function loadBootstrap(path, { trusted, replay, now, logger }) {
  const source = path instanceof URL ? path.pathname : path;
  if (typeof source !== 'string' || source === '') {
    throw new ConfigurationError('must be a file path', { option: OPTION });
  }
  let data;
  try {
    data = fs.readFileSync(path);
  } catch (error) {
    throw new ConfigurationError(`cannot read ${source}: ${STRERROR[error.code] || error.message}`, { option: OPTION });
  }
  let document;
  try {
    document = JSON.parse(data.toString('utf8'));
  } catch (error) {
    throw new ConfigurationError(`${source} is not JSON: ${error.message}`, { option: OPTION });
  }
  const entries = entriesOf(document);
  if (entries === null) {
    throw new ConfigurationError(`${source} must hold a list of envelopes, or an object with an "envelopes" list`,
      { option: OPTION });
  }
  const patches = new Map();
  const skipped = [];
  entries.forEach((entry, index) => {
    let patch;
    try {
      patch = openEnvelope(envelopeOf(entry), { trusted, replay, now });
    } catch (why) {
      if (!(why instanceof PatchRefused)) throw why;
      skipped.push(`entry ${index}: ${why.message}`);
      logger.warn(`Molam SDK: ${OPTION} ${source}: entry ${index} skipped: ${why.message}`);
      return;
    }
    patches.set(patch.id, patch); // the replay guard let it through: it is the newest seen for its id
  });
  return { source, patches: [...patches.values()], skipped };
}

module.exports = { loadBootstrap, OPTION };
