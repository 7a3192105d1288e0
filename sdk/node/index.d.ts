// Types of @molam/sdk (hand-written; the package has no build step).

/** A patch this client applied: what `onPatchApplied` receives and `getPatchHistory()` lists. */
export interface AppliedPatch {
  readonly id: string;
  readonly version: string;
  readonly description: string;
  readonly severity: 'low' | 'medium' | 'high' | 'critical' | string;
  readonly errorSignature: string;
  /** The error it answered, e.g. "401 Unauthorized: api_key_revoked" or "ETIMEDOUT: …". */
  readonly error: string;
  /** The retried call succeeded. */
  readonly success: boolean;
  readonly rollbackTriggered: boolean;
  readonly appliedAt: Date;
}

/** Anything with console's methods; `console` by default. */
export interface Logger {
  debug?(message: string): void;
  info?(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export interface MolamClientOptions {
  apiKey: string | undefined;
  secretKey: string | undefined;
  /** Default true; stays off (with a warning) without `selfhealToken` and at least one trusted key. */
  enableSelfHealing?: boolean;
  onPatchApplied?: ((patch: AppliedPatch) => unknown) | null;
  /** Payments API, default "https://api.molam.com". */
  baseUrl?: string;
  /** Milliseconds per call (default 10000, at most 120000); also bounds the registry lookup (at most 5000). */
  timeout?: number;
  /** Sent as Molam-Version. */
  apiVersion?: string | null;
  /** The registry API; default MOLAM_SELFHEAL_URL, else `baseUrl`. */
  selfhealUrl?: string | null;
  /** A developer token of the registry; default MOLAM_SELFHEAL_TOKEN. */
  selfhealToken?: string | null;
  /** Pinned Ed25519 public keys (PEM) by key id: the current and the next. */
  trustedKeys?: Record<string, string | Buffer> | null;
  /**
   * A file of signed envelopes the client starts with (a list, or {"envelopes": [...]}, of
   * envelopes or registry answers). Each is verified like a served one; a bad one is skipped
   * with a warning. Its patches stand in while the registry cannot be asked, or alone without
   * `selfhealToken`.
   */
  bootstrapEnvelopes?: string | URL | null;
  /**
   * The credentials a patch may switch the API key to (`this.useFallbackCredential("NAME")`).
   * Default: environment variables named `MOLAM_…`, never `MOLAM_SELFHEAL_…` (this SDK's own
   * settings) nor `MOLAM_SECRET_KEY`. An array of names or `PREFIX_*` entries: only these
   * environment variables. An object: names → API keys. Anything else a patch names is refused.
   */
  fallbackCredentials?: Record<string, string> | readonly string[] | null;
  /** Hosts a patch may move `baseUrl` to (https only); default Molam's API hosts and `baseUrl`'s. */
  allowedHosts?: Iterable<string> | null;
  /** Largest registry answer read (default 65536 bytes). */
  maxEnvelopeBytes?: number;
  /** Milliseconds between report batches (default 1000), sent off the caller's path. */
  reportInterval?: number;
  logger?: Logger;
  /** What requests go through; default: pooled keep-alive HTTP through the environment's proxy. */
  transport?: Transport | null;
  /** Wall clock in epoch milliseconds, used to sign requests and check envelope expiry (a test seam). */
  clock?: () => number;
}

/** One HTTP answer, as a Transport resolves it. */
export interface TransportResponse {
  status: number;
  reason: string;
  /** Lower-case names. */
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** What a client sends its requests through (`@molam/sdk/testing` has a fake). */
export interface Transport {
  exchange(url: string, options: { method: string; headers: Record<string, string>; body: Buffer | null;
    timeoutMs: number; maxBytes: number }): Promise<TransportResponse>;
  close(): void;
}

/** The settings a patch may change, keyed as operation documents name them. */
export interface ClientState {
  readonly base_url: string;
  readonly timeout_ms: number;
  readonly max_retries: number;
  readonly default_currency: string | null;
  readonly api_version: string | null;
  readonly clock_skew_seconds: number;
  readonly credential: string | null;
  readonly backoff: { readonly base_delay_ms: number; readonly max_delay_ms: number; readonly jitter: boolean };
}

export type Payment = Record<string, unknown> & { id: string; status?: string };

export interface CreatePaymentParams {
  amount: number;
  currency?: string | null;
  [field: string]: unknown;
}

export interface RefundParams {
  amount?: number | null;
  [field: string]: unknown;
}

export class MolamClient {
  constructor(options: MolamClientOptions);

  createPayment(params: CreatePaymentParams): Promise<Payment>;
  getPayment(paymentId: string): Promise<Payment>;
  refund(paymentId: string, params?: RefundParams): Promise<Record<string, unknown>>;

  /** The patches applied by this client, oldest first (at most 1000). */
  getPatchHistory(): AppliedPatch[];
  /** Send buffered reports now; true if none are left. */
  flushReports(): Promise<boolean>;
  /** Send the last buffered reports (at most 2 s) and release connections. */
  close(): Promise<void>;

  readonly state: ClientState;
  readonly baseUrl: string;
  /** Milliseconds. */
  readonly timeout: number;
  readonly maxRetries: number;
  readonly defaultCurrency: string | null;
  readonly apiVersion: string | null;
  readonly clockSkewSeconds: number;
  /** The fallback credential's name in use, or null for the primary key. */
  readonly credential: string | null;
  readonly selfHealing: boolean;
  readonly pendingReports: number;
  toJSON(): Record<string, unknown>;
}

export class MolamError extends Error {
  status: number | null;
  code: string | null;
  /** What the self-heal request and reports carry. */
  readonly errorText: string;
}

/** The payments API answered with an error status. */
export class ApiError extends MolamError {
  status: number;
  reason: string;
  detail: string;
  /** Seconds, from Retry-After. */
  retryAfter: number | null;
  /** Epoch milliseconds, from the Date header. */
  serverTime: number | null;
  field: string | null;
}

/** No complete answer within the timeout; code "ETIMEDOUT". */
export class MolamTimeout extends MolamError {
  code: 'ETIMEDOUT';
}

/** The API could not be reached; code is the system error's (ECONNREFUSED, …). */
export class MolamConnectionError extends MolamError {
  code: string;
}

/** Thrown by the constructor: `option` names the option (or environment variable), `reason` says why. */
export class ConfigurationError extends MolamError {
  constructor(reason: string, options?: { option?: string | null });
  readonly option: string | null;
  readonly reason: string;
}

/** The registry's key id of an Ed25519 public key (PEM): 16 hex digits. */
export function keyId(publicKeyPem: string | Buffer): string;

export const VERSION: string;
