'use strict';
// @molam/sdk: the Molam payments SDK with self-healing. Signed patches, applied from a fixed
// table of operations; no runtime dependency beyond Node's standard library.

const { MolamClient, VERSION } = require('./client');
const { keyId } = require('./envelope');
const { ApiError, ConfigurationError, MolamConnectionError, MolamError, MolamTimeout } = require('./errors');

module.exports = {
  MolamClient, ApiError, ConfigurationError, MolamConnectionError, MolamError, MolamTimeout, keyId, VERSION,
};
