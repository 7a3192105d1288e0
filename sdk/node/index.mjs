// ES module entry: the CommonJS implementation, re-exported (one copy of the code, one state).
import sdk from './src/index.js';

export const {
  MolamClient, ApiError, ConfigurationError, MolamConnectionError, MolamError, MolamTimeout, keyId, VERSION,
} = sdk;
