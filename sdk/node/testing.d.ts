// Types of @molam/sdk/testing (hand-written; the package has no build step).
import type { MolamClient, MolamClientOptions, Transport, TransportResponse } from './index';

/** A request the fake payments API received. */
export interface FakeRequest {
  readonly method: string;
  readonly url: string;
  readonly host: string;
  readonly path: string;
  /** Lower-case names. */
  readonly headers: Readonly<Record<string, string>>;
  /** The decoded JSON body, or null. */
  readonly json: unknown;
  /** From `Authorization: Bearer …`. */
  readonly apiKey: string | null;
}

export interface FailureOptions {
  /** An error answer with this HTTP status (400-599)… */
  status?: number | null;
  code?: string | null;
  message?: string | null;
  /** …or a timeout (MolamTimeout, at once)… */
  timeout?: boolean;
  /** …or an unreachable host (MolamConnectionError, ECONNREFUSED). */
  unreachable?: boolean;
  /** Which requests fail; default all. */
  when?: ((request: FakeRequest) => unknown) | null;
  /** How many times; default always. */
  times?: number | null;
  /** Seconds, sent as Retry-After. */
  retryAfter?: number | null;
  field?: string | null;
}

export interface Failure extends Required<FailureOptions> {
  /** The requests it failed so far. */
  hits: number;
}

/** The payments API: every call succeeds unless a declared failure applies. */
export class FakePayments {
  readonly requests: FakeRequest[];
  readonly payments: Map<string, Record<string, unknown>>;
  fail(failure: FailureOptions): Failure;
  clearFailures(): void;
}

/** A list of operations or a whole operation document, as `selfheal compile` prints it. */
export type Operations = Array<Record<string, unknown>> | { format: 'selfheal.operations'; version: 1;
  operations: Array<Record<string, unknown>> };

export interface PatchOptions {
  rollback?: Operations | null;
  description?: string;
  severity?: 'low' | 'medium' | 'high' | 'critical';
  version?: string;
  patchId?: string | null;
}

export interface Envelope {
  format: 'selfheal.patch.v1';
  payload: string;
  signatures: Array<{ alg: 'Ed25519'; keyId: string; signature: string }>;
}

/** The registry API's SDK routes: patches declared by the test, signed with its own key. */
export class FakeRegistry {
  constructor(options?: { envelopeTtl?: number });
  readonly keyId: string;
  readonly publicKeyPem: string;
  readonly trustedKeys: Record<string, string>;
  /** Seconds. */
  envelopeTtl: number;
  /** True: lookups answer 503, as a registry that is down. */
  unavailable: boolean;
  readonly lookups: Array<Record<string, unknown>>;
  readonly receivedReports: Array<Record<string, unknown>>;
  /** Serve a patch for the errors its signature matches; returns its id. */
  addPatch(errorSignature: string, operations: Operations, options?: PatchOptions): string;
  /** The kill switch: 404 for its errors from now on. */
  removePatch(patchId: string): void;
  envelope(patchId: string, options?: { now?: number }): Envelope;
  /** Every declared patch's envelope: a bootstrap file's content. */
  envelopes(): Envelope[];
}

export class FakeTransport implements Transport {
  constructor(payments: FakePayments, registry: FakeRegistry);
  exchange(url: string, options: { method: string; headers: Record<string, string>; body: Buffer | null;
    timeoutMs: number; maxBytes: number }): Promise<TransportResponse>;
  close(): void;
}

/** A fake payments API and a fake registry, and clients wired to both. */
export class FakeMolam {
  constructor(options?: { envelopeTtl?: number });
  readonly payments: FakePayments;
  readonly registry: FakeRegistry;
  readonly transport: FakeTransport;
  /** A MolamClient healed by the fake registry; any MolamClient option may be given. */
  client(options?: Partial<MolamClientOptions>): MolamClient;
  /** Delivers the clients' buffered reports; resolves every report the registry received. */
  reports(): Promise<Array<Record<string, unknown>>>;
  close(): Promise<void>;
}

export const SELFHEAL_URL: string;
