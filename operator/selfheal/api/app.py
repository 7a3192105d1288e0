"""The registry API on aiohttp: routes, authentication, limits. Domain work lives beside it."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import kubernetes
import psycopg
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import ValidationError

from selfheal.api import openapi
from selfheal.api.catalog import Catalog, ServedPatch
from selfheal.api.metrics import ApiMetrics
from selfheal.api.outcomes import OutcomeWriter
from selfheal.api.ratelimit import RateLimiter
from selfheal.api.request_log import RequestLog
from selfheal.api.schemas import (
    MAX_OUTCOMES_PER_BATCH,
    OutcomeBatch,
    SelfHealRequest,
    field_errors,
    may_hold_nul,
    nul_fields,
)
from selfheal.api.token_cache import NOT_CACHED, TokenCache
from selfheal.core.matching import Match
from selfheal.core.models import PatchSpec
from selfheal.core.signing import SigningKey, seal
from selfheal.registry.outcomes import Application, context_json
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
    outcome_buffer: int = 100_000
    outcome_wait_seconds: float = 2.0  # how long a report batch may wait for buffer room before a 503
    token_cache_seconds: float = 10.0
    json_logs: bool = False  # --log-format json: the self-heal request lines too
    patch_namespace: str | None = None  # where POST /api/dev/patches creates SelfHealPatch resources


KEY_SETTINGS = web.AppKey("settings", ApiSettings)
KEY_CATALOG = web.AppKey("catalog", Catalog)
KEY_OUTCOMES = web.AppKey("outcomes", OutcomeWriter)
KEY_METRICS = web.AppKey("metrics", ApiMetrics)
KEY_LIMITER = web.AppKey("limiter", RateLimiter)
KEY_AUTH = web.AppKey("auth", TokenCache)
KEY_REQUEST_LOG = web.AppKey("request_log", RequestLog)
KEY_ANSWERS: web.AppKey[ResponseCache] = web.AppKey("answers")
KEY_LOOKUP_BODIES: web.AppKey[LookupBodies] = web.AppKey("lookup_bodies")
KEY_KUBE = web.AppKey("kube", kubernetes.client.CustomObjectsApi)


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
            if role is None:
                return await handler(request, None)
            header = request.headers.get("Authorization", "")
            token = header[7:].strip() if header.startswith("Bearer ") else ""
            if not token:
                return _unauthorized("missing bearer token")
            auth = request.app[KEY_AUTH]
            principal = auth.cached(token)
            if principal is NOT_CACHED:
                try:
                    principal = await auth.principal(token)
                except psycopg.Error:
                    return problem(503, "registry_unavailable", "cannot check the token now; retry")
            refusal = _refusal(request.app, principal, role)
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
        response = problem(429, "rate_limited", "too many requests for this token")
        response.headers["Retry-After"] = str(max(1, int(wait + 0.999)))
        return response
    return None


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


def _validated(raw: bytes, model: type[SelfHealRequest] | type[OutcomeBatch]):
    """(body, None) or (None, the 400 naming the field). JSON parsed and checked in one pass."""
    try:
        body = model.model_validate_json(raw)
    except ValidationError as error:
        invalid_json = next((item for item in error.errors(include_url=False) if item["type"] == "json_invalid"), None)
        if invalid_json is not None:
            return None, problem(400, "malformed_json", invalid_json["msg"])
        return None, _bad_request(error)
    if may_hold_nul(raw):
        fields = nul_fields(body)
        if fields:
            return None, problem(
                400, "invalid_request", "; ".join(f"{f['field']}: {f['reason']}" for f in fields), fields=fields
            )
    return body, None


async def _json_body(request: web.Request) -> object:
    try:
        raw = await request.read()  # aiohttp enforces client_max_size: 413 beyond it
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "malformed_json", "message": str(error)}), content_type="application/json"
        ) from None


def _bad_request(error: ValidationError) -> web.Response:
    fields = field_errors(error)
    return problem(400, "invalid_request", "; ".join(f"{f['field']}: {f['reason']}" for f in fields), fields=fields)


def envelope_for(patch: ServedPatch, settings: ApiSettings, *, now: datetime) -> dict:
    row = patch.row
    payload = {
        "patch_id": patch.id,
        "version": patch.version,
        "sequence": patch.sequence,
        "sdk_language": patch.sdk_language,
        "error_signature": patch.error_signature,
        "description": patch.description,
        "severity": patch.severity,
        "operations": row["operations"],
        "rollback_operations": row.get("rollback_operations"),
        "issued_at": now.isoformat(timespec="seconds"),
        "expires_at": (now + timedelta(seconds=settings.envelope_ttl_seconds)).isoformat(timespec="seconds"),
    }
    return seal(payload, key=settings.signing_key)


class LookupBodies:
    """Validated lookup bodies by their exact bytes: SDKs send the same few errors again and again,
    and parsing and validating one is a large share of a lookup. Validation is a pure function of the
    bytes, so a kept answer is the answer; small bodies only, and a bounded number of them."""

    MAX_BODY_BYTES = 2048
    MAX_KEPT = 10_000

    def __init__(self) -> None:
        self._bodies: dict[bytes, SelfHealRequest] = {}

    def validated(self, raw: bytes) -> tuple[SelfHealRequest | None, web.Response | None]:
        """(body, None) or (None, the 400 naming the field), as `_validated`; refusals are not kept."""
        body = self._bodies.get(raw)
        if body is not None:
            return body, None
        body, refusal = _validated(raw, SelfHealRequest)
        if body is not None and len(raw) <= self.MAX_BODY_BYTES:
            if len(self._bodies) >= self.MAX_KEPT:
                self._bodies.clear()
            self._bodies[raw] = body
        return body, refusal


class ResponseCache:
    """Signed answers per (patch, sequence, rule), re-signed after a tenth of the envelope's lifetime.

    Signing and serialising once per patch and interval instead of once per request keeps a
    lookup at the cost of a dict access; a registry change has a new sequence, hence a new key.
    """

    def __init__(self, settings: ApiSettings) -> None:
        self.settings = settings
        self.refresh_seconds = settings.envelope_ttl_seconds / 10
        self._answers: dict[tuple[str, int, str], tuple[bytes, float]] = {}

    def answer(self, patch: ServedPatch, match: Match) -> bytes:
        key = (patch.id, patch.sequence, match.kind)
        cached = self._answers.get(key)
        now = time.time()
        if cached is not None and cached[1] > now:
            return cached[0]
        body = json.dumps(
            {
                "patch": {
                    "id": patch.id,
                    "version": patch.version,
                    "description": patch.description,
                    "severity": patch.severity,
                    "matched_by": match.kind,
                    "rule": match.rule,
                },
                "envelope": envelope_for(patch, self.settings, now=datetime.fromtimestamp(now, UTC)),
            }
        ).encode()
        if len(self._answers) > 200_000:
            self._answers.clear()
        self._answers[key] = (body, now + self.refresh_seconds)
        return body


async def self_heal(request: web.Request, principal) -> web.Response:
    started = time.perf_counter()
    app = request.app
    body, refusal = app[KEY_LOOKUP_BODIES].validated(_arrived_body(request) or await request.read())
    if refusal is not None:
        return refusal
    assert body is not None  # validated: either a body or a refusal
    found = app[KEY_CATALOG].find(body.sdk, body.error, body.status, body.code)
    if found is None:
        app[KEY_METRICS].lookup_misses += 1
        # The miss is an application without a patch: the runbook's "errors without a patch" report.
        accepted = app[KEY_OUTCOMES].offer(
            [
                Application(
                    patch_id=None,
                    developer_id=principal.developer_id,
                    sdk_language=body.sdk,
                    error_encountered=body.error,
                    success=False,
                    rollback_triggered=False,
                    patch_applied=False,
                    context=context_json(body.context),
                    applied_at=datetime.now(UTC),
                )
            ]
        )
        _log_self_heal(app[KEY_REQUEST_LOG], principal, body, None, None, started, recorded=accepted)
        return problem(404, "no_patch", f"no active patch for {body.sdk} error {body.error[:100]!r}", recorded=accepted)
    patch, match = found
    app[KEY_METRICS].lookup_hits += 1
    _log_self_heal(app[KEY_REQUEST_LOG], principal, body, patch, match, started, recorded=True)
    return web.Response(body=app[KEY_ANSWERS].answer(patch, match), content_type="application/json")


def _log_self_heal(request_log: RequestLog, principal, body, patch, match, started, *, recorded: bool) -> None:
    # One structured line per request: `kubectl logs devportal-api | grep "self-heal"` finds it.
    request_log.self_heal(
        principal.developer_id,
        body.sdk,
        body.error,
        patch.id if patch else None,
        patch.version if patch else None,
        match.kind if match else "miss",
        recorded,
        (time.perf_counter() - started) * 1000,
    )


async def report_outcomes(request: web.Request, principal) -> web.Response:
    app = request.app
    if not await app[KEY_OUTCOMES].wait_for_room(
        MAX_OUTCOMES_PER_BATCH, timeout=app[KEY_SETTINGS].outcome_wait_seconds
    ):
        return _buffer_full()
    batch, refusal = _validated(_arrived_body(request) or await request.read(), OutcomeBatch)
    if refusal is not None:
        return refusal
    knows, developer = app[KEY_CATALOG].knows, principal.developer_id  # from the token, never the body
    now = datetime.now(UTC)
    applications, rejected = [], []
    for index, r in enumerate(batch.reports):
        if r.patch_id is not None and not knows(r.patch_id):
            # A stale id must not cost the good reports of its batch: those are refused one by one.
            rejected.append({"index": index, "field": f"reports.{index}.patch_id", "reason": "unknown patch id"})
            continue
        applied_at = min(r.applied_at, now) if r.applied_at and r.applied_at.tzinfo else now
        applications.append(
            Application(
                r.patch_id,
                developer,
                r.sdk,
                r.error,
                r.success,
                r.rollback_triggered,
                r.patch_applied,
                context_json(r.context),
                applied_at,
            )
        )
    if not applications:
        return problem(400, "unknown_patch", "every report names an unknown patch id", fields=rejected)
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
    app[KEY_REQUEST_LOG] = RequestLog(json_lines=settings.json_logs)
    app[KEY_OUTCOMES] = OutcomeWriter(settings.database_url, capacity=settings.outcome_buffer)
    app[KEY_METRICS] = ApiMetrics()
    app[KEY_LIMITER] = RateLimiter(rate=settings.rate_per_second, burst=settings.rate_burst)
    app[KEY_AUTH] = TokenCache(settings.database_url, settings.token_cache_seconds)
    if settings.patch_namespace is not None:
        from selfheal.services import kube

        app[KEY_KUBE] = kube.custom_objects()
    for method, path, handler, role in ROUTES:
        timer = app[KEY_METRICS].request_timer(route=path, method=method)
        app.router.add_route(method, path, _serve(handler, timer=timer, role=role))
    app.cleanup_ctx.append(_background)
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
