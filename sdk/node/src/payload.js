'use strict';
// The signed payload's grammar, read exactly as the Python SDK reads it (molam/payload.py).
//
// A payload is JSON (RFC 8259), and more strictly:
// - UTF-8 without a byte order mark, every sequence well formed (no UTF-16 or UTF-32, no encoded
//   surrogates, no overlong forms);
// - every number is an integer within ±(2^53 - 1), the range both languages read exactly: no
//   fraction, no exponent, no NaN or Infinity, no -0 (JSON.parse reads `30000.0` and `3e4` as
//   integers and `2^53 + 1` as `2^53`; Python reads them as floats, or exactly);
// - no object names a member twice (each language would keep a different one, or the last);
// - no \u escape leaves a lone surrogate; containers nest at most MAX_DEPTH deep;
// - times are RFC 3339 in UTC, one form only: `YYYY-MM-DDTHH:MM:SS`, up to 6 fraction digits,
//   then `Z` or `+00:00` (the registry writes `2026-03-01T12:00:00+00:00`).
//
// Anything else throws PayloadError naming the field and the reason. The registry's output is
// inside this grammar; tests/vectors/payloads.json holds the cases both SDKs run.

const MAX_SAFE_INTEGER = Number.MAX_SAFE_INTEGER; // 2^53 - 1
const MAX_DEPTH = 32;
const TIME_FORM = 'YYYY-MM-DDTHH:MM:SS[.ffffff] then Z or +00:00';

// Sticky (`y`) patterns matched at a position; character classes only, so linear on any length.
const WHITESPACE = /[ \t\n\r]*/y;
const STRING_RUN = /[^"\\\x00-\x1f]*/y;
const ESCAPE = /\\(?:["\\/bfnrt]|u([0-9A-Fa-f]{4}))/y;
const NUMBER = /-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/y;
const TIME = /^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,6}))?(?:Z|\+00:00)$/;
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }); // a BOM stays, to be refused

class PayloadError extends TypeError {}

function matchAt(pattern, text, pos) {
  pattern.lastIndex = pos;
  return pattern.exec(text);
}

function child(path, key) {
  return path ? `${path}.${key}` : key;
}

/** Checks the text against the grammar; JSON.parse then reads the value. */
class Scanner {
  constructor(text) {
    this.text = text;
    this.pos = 0;
  }

  check() {
    this.skipWhitespace();
    this.value('', 0);
    this.skipWhitespace();
    if (this.pos !== this.text.length) throw this.error('', 'has data after the JSON value');
  }

  error(path, reason) {
    return new PayloadError(`${path || 'payload'}: ${reason}`);
  }

  startsWith(word) {
    return this.text.startsWith(word, this.pos);
  }

  skipWhitespace() {
    this.pos += matchAt(WHITESPACE, this.text, this.pos)[0].length;
  }

  value(path, depth) {
    const char = this.pos < this.text.length ? this.text[this.pos] : '';
    if (char === '{' || char === '[') {
      if (depth >= MAX_DEPTH) throw this.error(path, `nests deeper than ${MAX_DEPTH} levels`);
      if (char === '{') this.object(path, depth + 1);
      else this.array(path, depth + 1);
    } else if (char === '"') {
      this.string(path);
    } else if (char === '-' || (char >= '0' && char <= '9')) {
      this.number(path);
    } else {
      for (const word of ['true', 'false', 'null']) {
        if (this.startsWith(word)) {
          this.pos += word.length;
          return;
        }
      }
      if (this.startsWith('NaN') || this.startsWith('Infinity')) throw this.error(path, 'NaN and Infinity are not JSON');
      throw this.error(path, char ? 'is not a JSON value' : 'ends before a value');
    }
  }

  object(path, depth) {
    this.pos += 1;
    this.skipWhitespace();
    if (this.startsWith('}')) {
      this.pos += 1;
      return;
    }
    const seen = new Set();
    for (;;) {
      if (!this.startsWith('"')) throw this.error(path, 'expects a member name in double quotes');
      const start = this.pos;
      this.string(path);
      const name = JSON.parse(this.text.slice(start, this.pos));
      if (seen.has(name)) throw this.error(path, `names the member ${JSON.stringify(name)} twice`);
      seen.add(name);
      this.skipWhitespace();
      if (!this.startsWith(':')) throw this.error(child(path, name), "expects ':' after the member name");
      this.pos += 1;
      this.skipWhitespace();
      this.value(child(path, name), depth);
      this.skipWhitespace();
      if (this.startsWith(',')) {
        this.pos += 1;
        this.skipWhitespace();
      } else if (this.startsWith('}')) {
        this.pos += 1;
        return;
      } else {
        throw this.error(path, "expects ',' or '}'");
      }
    }
  }

  array(path, depth) {
    this.pos += 1;
    this.skipWhitespace();
    if (this.startsWith(']')) {
      this.pos += 1;
      return;
    }
    for (let index = 0; ; index += 1) {
      this.value(`${path}[${index}]`, depth);
      this.skipWhitespace();
      if (this.startsWith(',')) {
        this.pos += 1;
        this.skipWhitespace();
      } else if (this.startsWith(']')) {
        this.pos += 1;
        return;
      } else {
        throw this.error(path, "expects ',' or ']'");
      }
    }
  }

  string(path) {
    const { text } = this;
    this.pos += 1;
    for (;;) {
      const run = matchAt(STRING_RUN, text, this.pos);
      this.pos += run[0].length;
      const char = this.pos < text.length ? text[this.pos] : '';
      if (char === '"') {
        this.pos += 1;
        return;
      }
      if (char === '\\') {
        const escape = matchAt(ESCAPE, text, this.pos);
        if (escape === null) throw this.error(path, 'has an invalid escape in a string');
        this.pos += escape[0].length;
        if (escape[1] !== undefined) this.surrogates(path, parseInt(escape[1], 16));
      } else if (char) {
        throw this.error(path, 'has a control character in a string (escape it)');
      } else {
        throw this.error(path, 'has a string that does not end');
      }
    }
  }

  surrogates(path, code) {
    if (code >= 0xdc00 && code <= 0xdfff) throw this.error(path, 'has a lone surrogate escape in a string');
    if (code >= 0xd800 && code <= 0xdbff) {
      const low = matchAt(ESCAPE, this.text, this.pos);
      const lowCode = low !== null && low[1] !== undefined ? parseInt(low[1], 16) : -1;
      if (lowCode < 0xdc00 || lowCode > 0xdfff) throw this.error(path, 'has a lone surrogate escape in a string');
      this.pos += low[0].length;
    }
  }

  number(path) {
    const match = matchAt(NUMBER, this.text, this.pos);
    if (match === null) {
      if (this.startsWith('-Infinity')) throw this.error(path, 'NaN and Infinity are not JSON');
      throw this.error(path, 'is not a JSON number');
    }
    const token = match[0];
    const shown = token.length <= 40 ? token : `${token.slice(0, 40)}…`;
    if (match[1] !== undefined || match[2] !== undefined) {
      throw this.error(path, `number ${shown} has a fraction or an exponent: only integers are allowed`);
    }
    if (token === '-0') throw this.error(path, 'number -0 is not allowed');
    const digits = token.replace(/^-/, '');
    if (digits.length > 16 || BigInt(digits) > BigInt(MAX_SAFE_INTEGER)) {
      throw this.error(path, `integer ${shown} is outside ±(2^53-1)`);
    }
    this.pos += token.length;
  }
}

/** The payload's value (from a Buffer or Uint8Array), if its bytes are inside the grammar. */
function parsePayload(data) {
  if (data.length >= 3 && data[0] === 0xef && data[1] === 0xbb && data[2] === 0xbf) {
    throw new PayloadError('payload: starts with a byte order mark (UTF-8 without one only)');
  }
  let text;
  try {
    text = UTF8.decode(data); // fatal: refuses UTF-16, encoded surrogates and overlong forms
  } catch {
    throw new PayloadError('payload: is not UTF-8 text');
  }
  new Scanner(text).check();
  return JSON.parse(text); // inside the grammar, JavaScript and Python read the same value
}

/** An RFC 3339 UTC time in the one form the grammar allows, as microseconds since the epoch (BigInt). */
function parseTime(value, field) {
  if (typeof value !== 'string') throw new PayloadError(`${field}: must be a time string (${TIME_FORM})`);
  const match = TIME.exec(value);
  const shown = JSON.stringify(value.slice(0, 40));
  if (match === null) throw new PayloadError(`${field}: ${shown} is not an RFC 3339 UTC time (${TIME_FORM})`);
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number);
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
  if (year < 1 || month < 1 || month > 12 || day < 1 || day > days[month - 1] || hour > 23 || minute > 59
      || second > 59) {
    throw new PayloadError(`${field}: ${shown} is not a valid date and time`);
  }
  const utc = new Date(0);
  utc.setUTCFullYear(year, month - 1, day); // not Date.UTC: it reads years 0-99 as 1900-1999
  utc.setUTCHours(hour, minute, second, 0);
  return BigInt(utc.getTime()) * 1000n + BigInt((match[7] || '0').padEnd(6, '0'));
}

/** Epoch milliseconds (a clock's reading, possibly fractional) as microseconds (BigInt). */
function microsOf(milliseconds) {
  return BigInt(Math.round(milliseconds * 1000));
}

/** Microseconds since the epoch, as the registry writes times (`…+00:00`, microseconds when any). */
function isoOfMicros(micros) {
  const fraction = ((micros % 1000000n) + 1000000n) % 1000000n;
  const seconds = new Date(Number((micros - fraction) / 1000n)).toISOString().slice(0, 19);
  return `${seconds}${fraction === 0n ? '' : `.${String(fraction).padStart(6, '0')}`}+00:00`;
}

module.exports = { MAX_SAFE_INTEGER, MAX_DEPTH, PayloadError, parsePayload, parseTime, microsOf, isoOfMicros };
