"""The registry API (`selfheal api`): signed patches for SDKs, reports, tokens, metrics."""
