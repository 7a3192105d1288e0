"""The registry API on aiohttp: routes, authentication, limits. Domain work lives beside it."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property, lru_cache

import kubernetes
import psycopg
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import ValidationError

from selfheal.api import openapi
from selfheal.api.catalog import Catalog, ServedPatch
from selfheal.api.client_address import Network, client_key
from selfheal.api.log_values import escape_values_of
from selfheal.api.metrics import ApiMetrics
from selfheal.api.outcomes import OutcomeWriter
from selfheal.api.ratelimit import RateLimiter
from selfheal.api.request_log import RequestLog
from selfheal.api.schemas import (
    LOOKUP_BODY,
    MAX_OUTCOMES_PER_BATCH,
    NUL_REASON,
    LookupBody,
    Outcome,
    OutcomeBatch,
    OutcomeBatchShape,
    approximate_size,
    field_errors,
    json_syntax_error,
    lenient_json,
    may_hold_non_finite,
    may_hold_nul,
    value_problems,
)
from selfheal.api.token_cache import NOT_CACHED, Busy, TokenCache
from selfheal.api.vouching import ValidReceipts, Vouching
from selfheal.core import receipts
from selfheal.core.matching import Match
from selfheal.core.models import PatchSpec, SpecError
from selfheal.core.patchlang import DEFAULT_HOSTS, AllowedHosts
from selfheal.core.signing import ENVELOPE_FORMAT, SigningKey, canonical_json, seal
from selfheal.core.validation import validate_row
from selfheal.registry.outcomes import Application, context_json
from selfheal.registry.tokens import well_formed
from selfheal.services import kill_switch, patch_resources

log = logging.getLogger("selfheal.api")


@dataclass(frozen=True)
class ApiSettings:
    database_url: str
    signing_key: SigningKey
    envelope_ttl_seconds: int = 300
    max_body_bytes: int = 64 * 1024
    rate_per_second: float = 50.0
    rate_burst: int = 100
    # Before authentication, per client address (the socket peer; an IPv6 client by its /64).
    address_rate_per_second: float = 200.0
    address_burst: int = 400
    trusted_proxies: tuple[Network, ...] = ()  # peers whose X-Forwarded-For names the client
    outcome_buffer: int = 100_000
    outcome_buffer_bytes: int = 64 * 1024 * 1024
    outcome_wait_seconds: float = 2.0  # how long a report batch may wait for buffer room before a 503
    token_cache_seconds: float = 10.0
    json_logs: bool = False  # --log-format json: the self-heal request lines too
    patch_namespace: str | None = None  # where POST /api/dev/patches creates SelfHealPatch resources
    allowed_hosts: AllowedHosts = DEFAULT_HOSTS  # base URLs a created patch may use: the operator's list

    @cached_property
    def receipt_key(self) -> bytes:
        return receipts.derive_key(self.signing_key.secret_bytes())


KEY_SETTINGS = web.AppKey("settings", ApiSettings)
KEY_CATALOG = web.AppKey("catalog", Catalog)
KEY_OUTCOMES = web.AppKey("outcomes", OutcomeWriter)
KEY_METRICS = web.AppKey("metrics", ApiMetrics)
KEY_LIMITER = web.AppKey("limiter", RateLimiter)
KEY_ADDRESS_LIMITER = web.AppKey("address_limiter", RateLimiter)
KEY_AUTH = web.AppKey("auth", TokenCache)
KEY_REQUEST_LOG = web.AppKey("request_log", RequestLog)
KEY_ANSWERS: web.AppKey[ResponseCache] = web.AppKey("answers")
KEY_LOOKUP_BODIES: web.AppKey[LookupBodies] = web.AppKey("lookup_bodies")
KEY_KUBE = web.AppKey("kube", kubernetes.client.CustomObjectsApi)
KEY_VALID_RECEIPTS = web.AppKey("valid_receipts", ValidReceipts)


def problem(status: int, error: str, message: str, **extra: object) -> web.Response:
    return web.json_response({"error": error, "message": message, **extra}, status=status)


def _serve(handler, *, timer, role: str | None):
    """`handler(request, principal)` behind authentication (unless public: role None, principal
    None), its latency observed.

    A wrapper per route rather than an aiohttp middleware, and no await on the way when the
    token is known: the middleware chain and its coroutines cost more than the lookup itself.
    """

    async def serve(request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        try:
            # Before anything else, so that unauthenticated traffic is paced like any other.
            wait = request.app[KEY_ADDRESS_LIMITER].acquire(_client(request), now=time.monotonic())
            if wait:
                return _rate_limited(wait, "too many requests from this address")
            if role is None:
                return await handler(request, None)
            header = request.headers.get("Authorization", "")
            token = header[7:].strip() if header.startswith("Bearer ") else ""
            if not token:
                return _unauthorized("missing bearer token")
            auth = request.app[KEY_AUTH]
            principal = auth.cached(token)
            if principal is NOT_CACHED:
                if not well_formed(token):  # only well-formed tokens are looked up, hence cached
                    return _unauthorized("malformed token")
                try:
                    principal = await auth.principal(token)
                except Busy:
                    response = problem(503, "busy", "too many new tokens to check at once; retry")
                    response.headers["Retry-After"] = "1"
                    return response
                except psycopg.Error:
                    return problem(503, "registry_unavailable", "cannot check the token now; retry")
            refusal = _refusal(request.app, principal, role) or _media_refusal(request)
            if refusal is not None:
                return refusal
            return await handler(request, principal)
        finally:
            timer.observe(time.perf_counter() - started)

    return serve


def _refusal(app: web.Application, principal, role: str) -> web.Response | None:
    """401 for an unknown token, 403 for a missing role, 429 past the token's rate; None: go on."""
    if principal is None:
        return _unauthorized("unknown or revoked token")
    if role == "dev_admin" and principal.role != "dev_admin":
        return problem(403, "forbidden", "this route needs the dev_admin role")
    wait = app[KEY_LIMITER].acquire(principal.token_id, now=time.monotonic())
    if wait:
        return _rate_limited(wait, "too many requests for this token")
    return None


def _media_refusal(request: web.Request) -> web.Response | None:
    """415 for a body declared as anything but JSON in UTF-8; None: go on (no Content-Type is
    read as JSON, as before)."""
    declared = request.headers.get("Content-Type")
    if declared is None or declared == "application/json" or request.method != "POST":
        return None
    media, _, parameters = declared.partition(";")
    charset = next(
        (
            value.strip().strip('"').lower()
            for name, _, value in (p.partition("=") for p in parameters.split(";"))
            if name.strip().lower() == "charset"
        ),
        "utf-8",
    )
    if media.strip().lower() == "application/json" and charset == "utf-8":
        return None
    return problem(415, "unsupported_media_type", f"the body must be application/json in UTF-8, not {declared[:100]!r}")


def _rate_limited(wait: float, message: str) -> web.Response:
    response = problem(429, "rate_limited", message)
    response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
    return response


def _client(request: web.Request) -> str:
    proxies = request.app[KEY_SETTINGS].trusted_proxies
    forwarded = request.headers.get("X-Forwarded-For") if proxies else None
    if not forwarded:
        return _peer_key(request.remote)
    return client_key(request.remote, forwarded, proxies)


@lru_cache(maxsize=4096)
def _peer_key(peer: str | None) -> str:
    # Without a forwarding header to weigh, the key depends on the peer alone: parsed once per
    # peer, not once per request (a few thousand short strings at most).
    return client_key(peer, None)


def _unauthorized(message: str) -> web.Response:
    response = problem(401, "unauthorized", message)
    response.headers["WWW-Authenticate"] = 'Bearer realm="selfheal"'
    return response


def _arrived_body(request: web.Request) -> bytes | None:
    """The whole body when it has already arrived (a small one comes in the packet of its headers),
    read without awaiting (`request.read()` awaits twice and copies it). None
    while it is still arriving (or empty): then `await request.read()`. Both answer 413 past
    client_max_size."""
    content = request.content
    if not content.is_eof():
        return None
    raw = content.read_nowait()
    while not content.at_eof():  # a chunk fed back while draining; nothing more comes after EOF
        raw += content.read_nowait()
    limit = request.app[KEY_SETTINGS].max_body_bytes
    if len(raw) > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(raw))
    return raw


def _lookup_body(raw: bytes) -> tuple[LookupBody | None, web.Response | None]:
    """(body, None) or (None, the 400 naming the field). JSON parsed and checked in one pass; what
    PostgreSQL would refuse (a miss is recorded) is refused here."""
    try:
        body = LOOKUP_BODY.validate_json(raw)
    except ValidationError as error:
        return None, _refusal_of(raw, error)
    problems = []
    context = body.get("context")
    if may_hold_nul(raw):
        problems = value_problems({"error": body["error"], "code": body.get("code"), "context": context or {}}, "")
    if context and may_hold_non_finite(context_json(context)):
        problems += value_problems(context, "context")
    return (None, _invalid(problems)) if problems else (body, None)


def _refusal_of(raw: bytes, error: ValidationError) -> web.Response:
    """The 400 for a body pydantic refused: the fields it names, or, when the body is not JSON to
    it, the value a lenient parse finds to blame (a lone surrogate), else the parser's message."""
    syntax = json_syntax_error(error)
    if syntax is None:
        return _bad_request(error)
    try:
        problems = value_problems(lenient_json(raw), "")
    except ValueError:
        problems = []
    return _invalid(problems) if problems else problem(400, "malformed_json", syntax)


def _outcome_reports(raw: bytes) -> tuple[list[tuple[int, Outcome]], list[dict], web.Response | None]:
    """(reports to record with their index, reports refused one by one, None) or ([], [], the 400).

    One bad report costs only itself: the batch is parsed once by pydantic; only when that fails
    is it parsed again leniently, and each report judged on its own, naming its fields.
    """
    try:
        batch = OutcomeBatch.model_validate_json(raw)
    except ValidationError as error:
        return _outcome_reports_one_by_one(raw, error)
    reports: list[tuple[int, Outcome]] = list(enumerate(batch.reports))
    rejected: list[dict] = []
    if may_hold_nul(raw):
        reports = []
        for index, report in enumerate(batch.reports):
            fields = {"patch_id": report.patch_id, "error": report.error, "context": report.context}
            problems = value_problems(fields, f"reports.{index}")
            rejected += [{"index": index, **item} for item in problems]
            if not problems:
                reports.append((index, report))
    return reports, rejected, None


def _outcome_reports_one_by_one(raw: bytes, error: ValidationError):
    syntax = json_syntax_error(error)
    try:
        data = lenient_json(raw)
    except ValueError as lenient_error:
        return [], [], problem(400, "malformed_json", syntax or str(lenient_error))
    try:
        shape = OutcomeBatchShape.model_validate(data)
    except ValidationError as shape_error:
        return [], [], _bad_request(shape_error)
    reports, rejected = [], []
    for index, item in enumerate(shape.reports):
        problems = value_problems(item, f"reports.{index}")
        if not problems:
            try:
                reports.append((index, Outcome.model_validate(item)))
            except ValidationError as report_error:
                problems = field_errors(report_error, prefix=f"reports.{index}.")
        rejected += [{"index": index, **item} for item in problems]
    return reports, rejected, None


async def _json_body(request: web.Request) -> object:
    """The body as JSON, strictly: NaN, Infinity and numbers beyond a double are refused."""
    try:
        raw = await request.read()  # aiohttp enforces client_max_size: 413 beyond it
        return json.loads(raw.decode("utf-8"), parse_constant=_not_json, parse_float=_finite)
    except (ValueError, RecursionError) as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        reason = "nested too deeply" if isinstance(error, RecursionError) else str(error)
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "malformed_json", "message": reason}), content_type="application/json"
        ) from None


def _not_json(constant: str) -> object:
    raise ValueError(f"{constant} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:40]} is beyond the range of a double")
    return value


def _bad_request(error: ValidationError) -> web.Response:
    return _invalid(field_errors(error))


def _invalid(fields: list[dict]) -> web.Response:
    return problem(400, "invalid_request", "; ".join(f"{f['field']}: {f['reason']}" for f in fields), fields=fields)


def envelope_for(patch: ServedPatch, settings: ApiSettings, *, now: datetime) -> dict:
    issued_at = now.isoformat(timespec="seconds")
    expires_at = (now + timedelta(seconds=settings.envelope_ttl_seconds)).isoformat(timespec="seconds")
    return seal(_payload(patch, issued_at, expires_at), key=settings.signing_key)


def _payload(patch: ServedPatch, issued_at: str, expires_at: str) -> dict:
    """What an envelope signs (times as ISO-8601 UTC, to the second)."""
    row = patch.row
    return {
        "patch_id": patch.id,
        "version": patch.version,
        "sequence": patch.sequence,
        "sdk_language": patch.sdk_language,
        "error_signature": patch.error_signature,
        "description": patch.description,
        "severity": patch.severity,
        "operations": row["operations"],
        "rollback_operations": row.get("rollback_operations"),
        "issued_at": issued_at,
        "expires_at": expires_at,
    }


class LookupBodies:
    """Validated lookup bodies by their exact bytes: an SDK repeating an error sends the same bytes
    again, and parsing and validating one is a share of a lookup. Validation is a pure function of
    the bytes, so a kept answer is the answer. Errors that carry a request id never repeat: a body
    is kept only the second time its bytes arrive (the first time only their hash is noted), so
    such traffic costs a set insertion, not a kept body. Small bodies only, within a budget in
    bytes (the bytes and the parsed body, whose context can weigh twenty times its JSON), the
    oldest evicted first; the noted hashes are bounded in number."""

    MAX_BODY_BYTES = 2048
    MAX_BYTES = 8 * 1024 * 1024
    MAX_SEEN = 50_000  # hashes noted once (about 70 bytes each with their set slot)

    def __init__(self, max_bytes: int = MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._bodies: dict[bytes, tuple[LookupBody, int]] = {}
        self._seen: set[int] = set()

    def validated(self, raw: bytes) -> tuple[LookupBody | None, web.Response | None]:
        """(body, None) or (None, the 400 naming the field), as `_lookup_body`; refusals are not kept."""
        kept = self._bodies.get(raw)
        if kept is not None:
            return kept[0], None
        body, refusal = _lookup_body(raw)
        if body is not None and len(raw) <= self.MAX_BODY_BYTES:
            seen = hash(raw)  # computed once per bytes object, by the lookup above
            if seen in self._seen:
                self._keep(raw, body)
            else:
                if len(self._seen) >= self.MAX_SEEN:
                    self._seen.clear()  # forgetting only delays keeping a repeated body
                self._seen.add(seen)
        return body, refusal

    def _keep(self, raw: bytes, body: LookupBody) -> None:
        size = (
            len(raw)
            + 400
            + approximate_size(body.get("context", {}))
            + len(body["error"])
            + len(body.get("code") or "")
        )
        while self._bodies and self.bytes + size > self.max_bytes:
            self.bytes -= self._bodies.pop(next(iter(self._bodies)))[1]  # the oldest first
        self._bodies[raw] = (body, size)
        self.bytes += size


class ResponseCache:
    """Signed answers per (patch, sequence, rule), re-signed after a tenth of the envelope's lifetime.

    Signing and serialising once per patch and interval instead of once per request keeps a
    lookup at the cost of a dict access; a registry change has a new sequence, hence a new key.
    An answer is the bytes of one JSON object ending in `}`, so a per-request field can be
    spliced in before it. The answers kept are bounded in bytes; the oldest goes first (answers of
    a replaced sequence are never asked again, so they age out).
    """

    MAX_BYTES = 64 * 1024 * 1024  # every answer of 40,000 patches (about 1.2 KB each with its entry)
    ENTRY_BYTES = 300  # the key, its tuple, the expiry, the dict slot, beside the answer's bytes

    def __init__(self, settings: ApiSettings, max_bytes: int = MAX_BYTES, clock=time.time) -> None:
        self.settings = settings
        self.refresh_seconds = settings.envelope_ttl_seconds / 10
        self.max_bytes = max_bytes
        self.bytes = 0
        self.clock = clock
        self._answers: dict[tuple[str, int, str], tuple[bytes, float, int]] = {}
        self._key_id = settings.signing_key.key_id.encode()

    def answer(self, patch: ServedPatch, match: Match) -> tuple[bytes, int]:
        """The answer's JSON bytes and its envelope's expiry (epoch seconds, for the receipt)."""
        key = (patch.id, patch.sequence, match.kind)
        cached = self._answers.get(key)
        now = self.clock()
        if cached is not None and cached[1] > now:
            return cached[0], cached[2]
        body = self._signed(patch, match, int(now))
        expires_at = int(now) + self.settings.envelope_ttl_seconds
        previous = self._answers.pop(key, None)
        if previous is not None:
            self.bytes -= len(previous[0]) + self.ENTRY_BYTES
        size = len(body) + self.ENTRY_BYTES
        while self._answers and self.bytes + size > self.max_bytes:
            self.bytes -= len(self._answers.pop(next(iter(self._answers)))[0]) + self.ENTRY_BYTES  # the oldest
        self._answers[key] = (body, now + self.refresh_seconds, expires_at)
        self.bytes += size
        return body, expires_at

    def _signed(self, patch: ServedPatch, match: Match, now: int) -> bytes:
        """The bytes of json.dumps({"patch": …, "envelope": envelope_for(…)}), written directly:
        the envelope's parts are base64 and hex, which JSON holds as they are."""
        issued_at, expires_at = _iso_utc(now), _iso_utc(now + self.settings.envelope_ttl_seconds)
        payload = canonical_json(_payload(patch, issued_at, expires_at))
        described = {
            "id": patch.id,
            "version": patch.version,
            "description": patch.description,
            "severity": patch.severity,
            "matched_by": match.kind,
            "rule": match.rule,
        }
        signature = self.settings.signing_key.private_key.sign(payload)
        return b"".join(
            (
                b'{"patch": ',
                json.dumps(described).encode(),
                b', "envelope": {"format": "',
                ENVELOPE_FORMAT.encode(),
                b'", "payload": "',
                base64.b64encode(payload),
                b'", "signatures": [{"alg": "Ed25519", "keyId": "',
                self._key_id,
                b'", "signature": "',
                base64.b64encode(signature),
                b'"}]}}',
            )
        )


def _iso_utc(epoch_seconds: int) -> str:
    """As datetime.fromtimestamp(…, UTC).isoformat(timespec="seconds"), at a third of its cost."""
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(epoch_seconds))


async def self_heal(request: web.Request, principal) -> web.Response:
    started = time.perf_counter()
    app = request.app
    body, refusal = app[KEY_LOOKUP_BODIES].validated(_arrived_body(request) or await request.read())
    if refusal is not None:
        return refusal
    assert body is not None  # validated: either a body or a refusal
    sdk, error = body["sdk"], body["error"]
    found = app[KEY_CATALOG].find(sdk, error, body.get("status"), body.get("code"))
    if found is None:
        app[KEY_METRICS].lookup_misses += 1
        # The miss is an application without a patch: the runbook's "errors without a patch" report.
        accepted = app[KEY_OUTCOMES].offer(
            [
                Application(
                    patch_id=None,
                    developer_id=principal.developer_id,
                    sdk_language=sdk,
                    error_encountered=error,
                    success=False,
                    rollback_triggered=False,
                    patch_applied=False,
                    context=context_json(body.get("context", {})),
                    applied_at=datetime.now(UTC),
                )
            ]
        )
        _log_self_heal(app[KEY_REQUEST_LOG], principal, body, None, None, started, recorded=accepted)
        return problem(404, "no_patch", f"no active patch for {sdk} error {error[:100]!r}", recorded=accepted)
    patch, match = found
    if app[KEY_CATALOG].switched_off_for(patch.id, principal.developer_id):
        app[KEY_METRICS].lookup_misses += 1
        _log_self_heal(app[KEY_REQUEST_LOG], principal, body, None, None, started, recorded=False)
        return problem(
            404,
            "no_patch",
            f"patch {patch.id} is switched off for this token by the guard (its outcome reports from this "
            "token crossed a guard rule); the patch's owners can see why in its status and audit",
        )
    app[KEY_METRICS].lookup_hits += 1
    _log_self_heal(app[KEY_REQUEST_LOG], principal, body, patch, match, started, recorded=True)
    answer, expires_at = app[KEY_ANSWERS].answer(patch, match)
    # The receipt is the developer's own, so it is added to the shared signed answer, not cached in it.
    receipt = receipts.issue(
        app[KEY_SETTINGS].receipt_key,
        developer_id=principal.developer_id,
        patch_id=patch.id,
        version=patch.version,
        expires_at=expires_at,
    )
    return web.Response(body=answer[:-1] + b',"receipt":"' + receipt.encode() + b'"}', content_type="application/json")


def _log_self_heal(request_log: RequestLog, principal, body, patch, match, started, *, recorded: bool) -> None:
    # One structured line per request: `kubectl logs devportal-api | grep "self-heal"` finds it.
    request_log.self_heal(
        principal.developer_id,
        body["sdk"],
        body["error"],
        patch.id if patch else None,
        patch.version if patch else None,
        match.kind if match else "miss",
        recorded,
        (time.perf_counter() - started) * 1000,
    )


async def report_outcomes(request: web.Request, principal) -> web.Response:
    app = request.app
    settings = app[KEY_SETTINGS]
    # The most a batch can take in the buffer: its COPY lines are at most twice its body (escapes).
    room = await app[KEY_OUTCOMES].wait_for_room(
        MAX_OUTCOMES_PER_BATCH, size=2 * settings.max_body_bytes, timeout=settings.outcome_wait_seconds
    )
    if not room:
        return _buffer_full()
    reports, rejected, refusal = _outcome_reports(_arrived_body(request) or await request.read())
    if refusal is not None:
        return refusal
    knows, developer = app[KEY_CATALOG].knows, principal.developer_id  # from the token, never the body
    now = datetime.now(UTC)
    vouching = Vouching(settings.receipt_key, developer=developer, now=now, valid=app[KEY_VALID_RECEIPTS])
    applications = []
    for index, r in reports:
        if r.patch_id is not None and not knows(r.patch_id):
            # A stale id must not cost the good reports of its batch: those are refused one by one.
            rejected.append({"index": index, "field": f"reports.{index}.patch_id", "reason": "unknown patch id"})
            continue
        refused = vouching.refusal(r, index)
        if refused is not None:
            rejected.append(refused)
            continue
        context = context_json(r.context)
        if may_hold_non_finite(context):  # jsonb refuses NaN and Infinity: refused here, not dropped later
            problems = value_problems(r.context, f"reports.{index}.context")
            if problems:
                rejected += [{"index": index, **item} for item in problems]
                continue
        applied_at = min(r.applied_at, now) if r.applied_at else now
        applications.append(
            Application(
                r.patch_id,
                developer,
                r.sdk,
                r.error,
                r.success,
                r.rollback_triggered,
                r.patch_applied,
                context,
                applied_at,
            )
        )
    rejected.sort(key=lambda item: item["index"])
    if not applications:
        if all(item["reason"] == "unknown patch id" for item in rejected):
            return problem(400, "unknown_patch", "every report names an unknown patch id", fields=rejected)
        return _invalid(rejected)
    if not app[KEY_OUTCOMES].offer(applications):
        return _buffer_full()
    app[KEY_METRICS].record_outcomes(applications)
    return web.json_response({"accepted": len(applications), "rejected": rejected}, status=202)


def _buffer_full() -> web.Response:
    response = problem(
        503,
        "buffer_full",
        "the report buffer is full (registry away or slower than the reports); keep the reports and retry",
    )
    response.headers["Retry-After"] = "5"
    return response


async def list_patches(request: web.Request, principal) -> web.Response:
    snapshot = request.app[KEY_CATALOG].snapshot
    patches = (
        []
        if snapshot is None
        else sorted(snapshot.patches.values(), key=lambda p: (p.sdk_language, p.error_signature, p.id))
    )
    return web.json_response(
        {
            "patches": [
                {
                    "id": p.id,
                    "sdk_language": p.sdk_language,
                    "error_signature": p.error_signature,
                    "description": p.description,
                    "severity": p.severity,
                    "version": p.version,
                }
                for p in patches
            ]
        }
    )


async def create_patch(request: web.Request, principal) -> web.Response:
    """The runbook's body (snake_case registry columns) → a SelfHealPatch in the patch namespace."""
    settings = request.app[KEY_SETTINGS]
    try:
        spec = PatchSpec.model_validate(await _json_body(request))
    except ValidationError as error:
        return _bad_request(error)
    try:
        # The operator's own validation and compiler, before anything exists: a patch it would
        # refuse is refused here, with its `line:column: reason`.
        validate_row(spec.model_dump(exclude_none=True), allowed_hosts=settings.allowed_hosts)
    except SpecError as error:
        fields = [dict(zip(("field", "reason"), (p.strip() for p in item.split(":", 1)))) for item in error.problems]
        return problem(400, "invalid_patch", "; ".join(error.problems), fields=fields)
    if settings.patch_namespace is None:
        return problem(501, "not_configured", "this API was started without --patch-namespace")
    body = patch_resources.resource_for(spec, created_by=f"devportal:{principal.developer_id}")
    try:
        created = await patch_resources.create_resource(
            request.app[KEY_KUBE], namespace=settings.patch_namespace, body=body
        )
    except kubernetes.client.ApiException as error:
        message = _kube_message(error)
        if error.status == 409:
            return problem(
                409, "conflict", f"a patch for this language and signature exists: {body['metadata']['name']}"
            )
        if error.status in (400, 422):
            return problem(400, "invalid_patch", message)  # schema, CEL or the admission webhook said no
        return problem(502, "kubernetes_error", message)
    metadata = created["metadata"]
    log.info("patch resource %s/%s created by %s", metadata["namespace"], metadata["name"], principal.developer_id)
    return web.json_response(
        {
            "name": metadata["name"],
            "namespace": metadata["namespace"],
            "uid": metadata["uid"],
            "status": "created; the operator validates and syncs it",
        },
        status=201,
    )


async def delete_patch(request: web.Request, principal) -> web.Response:
    """The runbook's "Désactiver un patch / Via API": switch the patch off now, keep its history."""
    app = request.app
    patch_id = request.match_info["patch_id"]
    actor = f"devportal:{principal.developer_id}"
    reason = request.query.get("reason", "disabled through the registry API")[:500]
    if "\x00" in reason:  # PostgreSQL text cannot hold it: a clean 400, not a failed write
        return _invalid([{"field": "reason", "reason": NUL_REASON}])
    if "\x00" in patch_id or len(patch_id) > 200:  # no registry id looks like this
        return problem(404, "no_such_patch", f"no patch with id {patch_id[:200]!r}")
    try:
        result = await kill_switch.switch_off_by_id(
            app[KEY_SETTINGS].database_url, patch_id=patch_id, actor=actor, reason=reason
        )
    except psycopg.Error:
        return problem(503, "registry_unavailable", "the registry is unreachable; the patch is unchanged, retry")
    if not result.found:
        return problem(404, "no_such_patch", f"no patch with id {patch_id!r}")
    annotated = False
    if result.source is not None and KEY_KUBE in app:
        try:
            await kill_switch.annotate_disabled(
                app[KEY_KUBE], namespace=result.source[0], name=result.source[1], reason=reason
            )
            annotated = True
        except kubernetes.client.ApiException as error:
            log.warning(
                "kill switch: registry row %s is off, but annotating %s/%s failed: %s",
                patch_id,
                *result.source,
                _kube_message(error),
            )
    log.info("kill switch: patch %s switched off by %s (%s)", patch_id, principal.developer_id, reason)
    return web.json_response(
        {
            "id": patch_id,
            "active": False,
            "reason": "ManualKillSwitch",
            "already_inactive": not result.switched_off,
            "resource_annotated": annotated,
        }
    )


def _kube_message(error: kubernetes.client.ApiException) -> str:
    try:
        return json.loads(error.body or "").get("message", str(error.reason))
    except (TypeError, ValueError):
        return str(error.reason)


async def healthz(request: web.Request, _principal: None) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request, _principal: None) -> web.Response:
    catalog = request.app[KEY_CATALOG]
    if catalog.snapshot is None:
        return problem(503, "not_ready", "the patch catalog has not loaded yet")
    return web.json_response(
        {"status": "ready", "patches": len(catalog.snapshot.patches), "registry_connected": catalog.healthy}
    )


async def openapi_document(request: web.Request, _principal: None) -> web.Response:
    return web.json_response(openapi.document())


async def metrics(request: web.Request, _principal: None) -> web.Response:
    app = request.app
    app[KEY_METRICS].outcomes_buffered.set(app[KEY_OUTCOMES].pending)
    return web.Response(body=app[KEY_METRICS].exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})


# (method, path, handler, role needed: None for public routes)
ROUTES = (
    ("POST", "/api/dev/self-heal", self_heal, "developer"),
    ("POST", "/api/dev/self-heal/reports", report_outcomes, "developer"),
    ("GET", "/api/dev/patches", list_patches, "developer"),
    ("POST", "/api/dev/patches", create_patch, "dev_admin"),
    ("DELETE", "/api/dev/patches/{patch_id}", delete_patch, "dev_admin"),
    ("GET", "/healthz", healthz, None),
    ("GET", "/readyz", readyz, None),
    ("GET", "/metrics", metrics, None),
    ("GET", "/openapi.json", openapi_document, None),
)


def build_app(settings: ApiSettings) -> web.Application:
    app = web.Application(client_max_size=settings.max_body_bytes)
    app[KEY_SETTINGS] = settings
    app[KEY_CATALOG] = Catalog(settings.database_url)
    app[KEY_ANSWERS] = ResponseCache(settings)
    app[KEY_LOOKUP_BODIES] = LookupBodies()
    app[KEY_VALID_RECEIPTS] = ValidReceipts()
    app[KEY_REQUEST_LOG] = RequestLog(json_lines=settings.json_logs)
    app[KEY_OUTCOMES] = OutcomeWriter(
        settings.database_url, capacity=settings.outcome_buffer, capacity_bytes=settings.outcome_buffer_bytes
    )
    app[KEY_METRICS] = ApiMetrics()
    app[KEY_LIMITER] = RateLimiter(rate=settings.rate_per_second, burst=settings.rate_burst)
    app[KEY_ADDRESS_LIMITER] = RateLimiter(rate=settings.address_rate_per_second, burst=settings.address_burst)
    app[KEY_AUTH] = TokenCache(settings.database_url, settings.token_cache_seconds)
    if settings.patch_namespace is not None:
        from selfheal.services import kube

        app[KEY_KUBE] = kube.custom_objects()
    for method, path, handler, role in ROUTES:
        timer = app[KEY_METRICS].request_timer(route=path, method=method)
        app.router.add_route(method, path, _serve(handler, timer=timer, role=role))
    app.cleanup_ctx.append(_background)
    # Request values reach these loggers (a kill-switch reason, a developer id): no forged lines.
    escape_values_of("selfheal.api", "selfheal.api.outcomes", "selfheal.api.catalog")
    return app


async def _background(app: web.Application):
    tasks = [
        asyncio.create_task(app[KEY_CATALOG].follow(), name="catalog"),
        asyncio.create_task(app[KEY_OUTCOMES].run(), name="reports"),
        asyncio.create_task(app[KEY_REQUEST_LOG].run(), name="request-log"),
    ]
    yield
    await app[KEY_OUTCOMES].flush()
    app[KEY_OUTCOMES].stop()
    tasks[0].cancel()
    tasks[2].cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await app[KEY_AUTH].close()
