'use strict';
// Which patch answers an error, by the registry's own rules (selfheal/core/matching.py), as the
// Python SDK's molam/matching.py. The registry chooses the patch for a served lookup; the SDK
// chooses among the patches it already holds only when it cannot ask: the bootstrap file's
// patches while the registry is unreachable (or not configured), and @molam/sdk/testing's fake
// registry. From most to least specific:
//
//   exact   the signature is the whole error text ("401 Unauthorized: api_key_revoked");
//   code    the signature is the error's code ("invalid_currency"), else the text's first word
//           unless it is a number;
//   prefix  the text starts with the signature; a longer one wins;
//   status  the signature is the HTTP status ("401").
//
// Then the longer signature, the higher severity, the higher sequence (the registry's "most
// recently updated"), the smaller id.

const MATCH_KINDS = ['exact', 'code', 'prefix', 'status'];
const SEVERITY_RANK = { critical: 3, high: 2, medium: 1, low: 0 };
const FIRST_WORD = /^[^\s:,;()]+/;

// Python's str.strip(): whitespace at both ends.
const strip = (text) => text.replace(/^\s+|\s+$/g, '');

function matchKind(signature, { message, status = null, code = null }) {
  const text = strip(message);
  if (signature === text) return 'exact';
  let codeOrName = null;
  if (code) {
    codeOrName = code;
  } else {
    const word = FIRST_WORD.exec(text);
    codeOrName = word && !/^\d+$/.test(word[0]) ? word[0] : null;
  }
  if (signature === codeOrName) return 'code';
  if (text.startsWith(signature)) return 'prefix';
  if (status !== null && status !== undefined && signature === String(status)) return 'status';
  return null;
}

function compare(a, b) {
  for (let i = 0; i < a.length; i += 1) {
    if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  }
  return 0;
}

/** The most specific patch ({id, errorSignature, severity, sequence}) for the error and how it matched, or null. */
function bestMatch(patches, error) {
  let best = null;
  let chosen = null;
  for (const patch of patches) {
    const kind = matchKind(patch.errorSignature, error);
    if (kind === null) continue;
    const key = [-MATCH_KINDS.indexOf(kind), [...patch.errorSignature].length, SEVERITY_RANK[patch.severity] ?? 0,
      patch.sequence];
    const order = best === null ? 1 : compare(key, best);
    if (order > 0 || (order === 0 && patch.id < chosen.patch.id)) {
      best = key;
      chosen = { patch, kind };
    }
  }
  return chosen;
}

module.exports = { MATCH_KINDS, matchKind, bestMatch };
