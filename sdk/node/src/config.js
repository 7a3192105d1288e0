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

// --- Fallback credentials: the names a patch may switch the API key to ----------------------------

const CREDENTIAL_NAME = /^[A-Z][A-Z0-9_]{2,63}$/;
const PREFIX = /^[A-Z][A-Z0-9_]{1,62}\*$/;
const DEFAULT_CREDENTIAL_PREFIX = 'MOLAM_'; // the registry compiler's rule too (selfheal.core.patchlang.bounds)
// Never a fallback credential, whatever the configuration: the SDK's own settings (its registry
// token and URL, the proxy variables it reads) and the request signing secret. Sent as the API
// key they would leave the process in an Authorization header.
const RESERVED_CREDENTIAL_PREFIX = 'MOLAM_SELFHEAL_';
const RESERVED_CREDENTIALS = new Set(['MOLAM_SECRET_KEY', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'REQUEST_METHOD']);

function reservedCredential(name) {
  return name.startsWith(RESERVED_CREDENTIAL_PREFIX) || RESERVED_CREDENTIALS.has(name);
}

/** Which names useFallbackCredential may use, and where their values come from (values null: the environment). */
class FallbackCredentials {
  constructor({ names = [], prefixes = [], values = null, isDefault = false } = {}) {
    this.names = new Set(names);
    this.prefixes = [...prefixes];
    this.values = values;
    this.isDefault = isDefault;
    Object.freeze(this);
  }

  allows(name) {
    if (typeof name !== 'string' || reservedCredential(name)) return false;
    return this.names.has(name) || this.prefixes.some((prefix) => name.startsWith(prefix) && name !== prefix);
  }

  describe() {
    if (this.isDefault) return 'names starting MOLAM_, except MOLAM_SELFHEAL_* and MOLAM_SECRET_KEY';
    if (this.names.size === 0 && this.prefixes.length === 0) return 'none';
    return `fallback credentials: ${[...[...this.names].sort(), ...this.prefixes.map((p) => `${p}*`).sort()].join(', ')}`;
  }

  /** The credential's value, or null: only ever for an allowed name. */
  value(name, env = process.env) {
    if (!this.allows(name)) return null;
    const source = this.values !== null ? this.values : env;
    const value = Object.hasOwn(source, name) ? source[name] : undefined;
    return typeof value === 'string' && value !== '' ? value : null;
  }
}

const DEFAULT_FALLBACK_CREDENTIALS = new FallbackCredentials({ prefixes: [DEFAULT_CREDENTIAL_PREFIX], isDefault: true });

/**
 * null: environment variables named MOLAM_… (none of the reserved ones). A plain object: exactly
 * these names, with these values. An array: environment variables of these names, or starting
 * with an entry's prefix written `PREFIX_*`. Empty: no patch may switch credentials.
 */
function fallbackCredentials(option, value) {
  if (value === undefined || value === null) return DEFAULT_FALLBACK_CREDENTIALS;
  const isMapping = typeof value === 'object' && !Array.isArray(value)
    && [Object.prototype, null].includes(Object.getPrototypeOf(value));
  if (!isMapping && !Array.isArray(value)) {
    throw new ConfigurationError('must map credential names to API keys, or list names (NAME or PREFIX_*) read from '
      + 'the environment', { option });
  }
  const values = isMapping ? { ...value } : null;
  const names = [];
  const prefixes = [];
  for (const entry of isMapping ? Object.keys(value) : value) {
    if (typeof entry !== 'string') throw new ConfigurationError('credential names must be strings', { option });
    if (!isMapping && PREFIX.test(entry)) {
      if (entry.startsWith(RESERVED_CREDENTIAL_PREFIX)) {
        throw new ConfigurationError(`${entry} covers only the SDK's own settings`, { option });
      }
      prefixes.push(entry.slice(0, -1));
      continue;
    }
    if (!CREDENTIAL_NAME.test(entry)) {
      const hint = isMapping ? '' : '; or a prefix such as MOLAM_FALLBACK_*';
      throw new ConfigurationError(`${JSON.stringify(entry.slice(0, 80))} is not a credential name (capitals, digits `
        + `and _, such as MOLAM_FALLBACK_API_KEY${hint})`, { option });
    }
    if (reservedCredential(entry)) {
      throw new ConfigurationError(`${entry} is the SDK's own setting or signing secret, never a fallback credential`,
        { option });
    }
    if (isMapping) credential(`${option}[${entry}]`, values[entry]);
    names.push(entry);
  }
  return new FallbackCredentials({ names, prefixes, values });
}

module.exports = {
  credential, httpUrl, selfHealSettings, fallbackCredentials, reservedCredential, FallbackCredentials,
  DEFAULT_FALLBACK_CREDENTIALS, CREDENTIAL_NAME, MAX_CREDENTIAL_LENGTH,
};
