'use strict';
// What MolamClient accepts. A bad option throws ConfigurationError at construction, naming the
// option and the reason, rather than turning into a 401 on the first call or into self-healing
// that silently never heals. The Python SDK (molam/config.py) checks the same things in the
// same order, with the same reasons (tests/vectors/configuration.json).

const { ConfigurationError } = require('./errors');

const MAX_CREDENTIAL_LENGTH = 1024;
const VISIBLE_ASCII = /^[\x21-\x7e]+$/;
const SPACE_OR_CONTROL = /[\s\x00-\x1f\x7f]/;

/** An API key, secret key or token: visible ASCII (it travels in a header or keys an HMAC). */
function credential(option, value) {
  if (value === undefined || value === null || value === '') {
    throw new ConfigurationError('is not set or empty', { option });
  }
  if (typeof value !== 'string') throw new ConfigurationError('must be a string', { option });
  if ([...value].length > MAX_CREDENTIAL_LENGTH) {
    throw new ConfigurationError(`is longer than ${MAX_CREDENTIAL_LENGTH} characters`, { option });
  }
  if (!VISIBLE_ASCII.test(value)) {
    if (SPACE_OR_CONTROL.test(value)) {
      throw new ConfigurationError('contains whitespace or a control character (a newline copied from a file?)',
        { option });
    }
    throw new ConfigurationError('contains a non-ASCII character', { option });
  }
  return value;
}

function httpUrl(option, value) {
  let parts = null;
  try {
    parts = typeof value === 'string' ? new URL(value) : null;
  } catch {
    parts = null;
  }
  if (parts === null || (parts.protocol !== 'http:' && parts.protocol !== 'https:') || !parts.hostname) {
    throw new ConfigurationError('must be an http:// or https:// URL with a host', { option });
  }
  return value;
}

/**
 * What self-healing will use: null when nothing of it is configured (it stays off, with a
 * warning: the runbook's example), or ConfigurationError when it is half configured.
 * Returns {url, token}; url and token are null without a registry (the bootstrap file only).
 */
function selfHealSettings({ token, tokenFromEnvironment, url, urlFromEnvironment, hasTrustedKeys, bootstrap }) {
  const tokenOption = tokenFromEnvironment ? 'MOLAM_SELFHEAL_TOKEN' : 'selfhealToken';
  const hasBootstrap = bootstrap !== undefined && bootstrap !== null;
  if (!token && !hasTrustedKeys && !hasBootstrap) return null;
  if (!hasTrustedKeys) {
    const needs = token ? `self-healing with a ${tokenOption} needs the registry's public key pinned to verify patches`
      : 'bootstrapEnvelopes need the registry\'s public key pinned to verify them';
    throw new ConfigurationError(`is empty, but ${needs} (\`selfheal keygen\` prints it); or turn self-healing off`,
      { option: 'trustedKeys' });
  }
  if (!token) {
    if (hasBootstrap) return { url: null, token: null };
    throw new ConfigurationError('is not set (nor MOLAM_SELFHEAL_TOKEN), but self-healing with trustedKeys needs a '
      + 'developer token of the registry (`selfheal token create`) or bootstrapEnvelopes; or turn self-healing off',
    { option: 'selfhealToken' });
  }
  credential(tokenOption, token);
  httpUrl(urlFromEnvironment ? 'MOLAM_SELFHEAL_URL' : 'selfhealUrl', url);
  return { url, token };
}

module.exports = { credential, httpUrl, selfHealSettings, MAX_CREDENTIAL_LENGTH };
