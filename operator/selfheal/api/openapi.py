"""The registry API's OpenAPI document, built from the same pydantic models that validate requests.

`docs/openapi.json` in the repository is this document; a test keeps the two identical.
"""

from __future__ import annotations

from typing import Any

from selfheal.api.schemas import OutcomeBatch, SelfHealRequest
from selfheal.core.models import PatchSpec

_ERROR = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string"},
        "message": {"type": "string"},
        "fields": {
            "type": "array",
            "items": {"type": "object", "properties": {"field": {"type": "string"}, "reason": {"type": "string"}}},
        },
    },
}


def _json(schema_ref: str) -> dict:
    return {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_ref}"}}}}


def _errors(*codes: int) -> dict:
    described = {
        400: "Invalid body: not strict JSON, a value PostgreSQL cannot store (NaN, Infinity, a number beyond a "
        "double, NUL, a lone surrogate) or patch code that does not compile; `fields` names each bad field",
        401: "Missing, malformed, unknown or revoked token",
        403: "The token's role may not use this route",
        404: "No active patch matches",
        409: "A patch for this language and signature exists",
        413: "Body larger than the limit",
        415: "Body declared as anything but application/json in UTF-8",
        429: "Too many requests from this client address (before authentication) or for this token; see Retry-After",
        503: "Registry unavailable, report buffer full or too many new tokens at once; retry later",
    }
    return {str(code): {"description": described[code], **_json("Error")} for code in codes}


def document() -> dict[str, Any]:
    bearer: list[dict[str, list[str]]] = [{"bearer": []}]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "selfheal registry API",
            "version": "1",
            "description": "Signed self-healing patches for Molam SDKs, outcome reports, patch management.",
        },
        "paths": {
            "/api/dev/self-heal": {
                "post": {
                    "summary": "The active patch for an SDK error, as a signed envelope",
                    "security": bearer,
                    "requestBody": {"required": True, **_json("SelfHealRequest")},
                    "responses": {
                        "200": {"description": "A patch matched", **_json("SelfHealResponse")},
                        **_errors(400, 401, 404, 413, 415, 429, 503),
                    },
                }
            },
            "/api/dev/self-heal/reports": {
                "post": {
                    "summary": "Outcomes of applied patches, in batches; the developer id comes from the token",
                    "description": "Reports are buffered and written with COPY. When the buffer is full (registry away "
                    "or behind), the request waits up to 2 s for room, then gets 503 with Retry-After: "
                    "the SDK keeps its reports and sends them again. Each report is judged on its own: one "
                    "naming an unknown patch, holding a value PostgreSQL cannot store, naming a patch without "
                    "the `receipt` of an answer that served it to this token, or with `applied_at` more than "
                    "15 minutes before or 1 minute after the server's clock, is listed in `rejected` and not "
                    "written, the others are; 400 when none is accepted.",
                    "security": bearer,
                    "requestBody": {"required": True, **_json("OutcomeBatch")},
                    "responses": {
                        "202": {
                            "description": "Accepted for writing",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {
                                            "accepted": {"type": "integer"},
                                            "rejected": {
                                                "type": "array",
                                                "items": {
                                                    "type": "object",
                                                    "properties": {
                                                        "index": {"type": "integer"},
                                                        "field": {"type": "string"},
                                                        "reason": {"type": "string"},
                                                    },
                                                },
                                            },
                                        },
                                    }
                                }
                            },
                        },
                        **_errors(400, 401, 413, 415, 429, 503),
                    },
                }
            },
            "/api/dev/patches": {
                "get": {
                    "summary": "Servable patches",
                    "security": bearer,
                    "responses": {
                        "200": {
                            "description": "Patches",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {"patches": {"type": "array", "items": {"type": "object"}}},
                                    }
                                }
                            },
                        },
                        **_errors(401, 429),
                    },
                },
                "post": {
                    "summary": "Create a SelfHealPatch resource (role dev_admin)",
                    "security": bearer,
                    "requestBody": {"required": True, **_json("PatchBody")},
                    "responses": {
                        "201": {"description": "Resource created; the operator syncs it"},
                        **_errors(400, 401, 403, 409, 413, 415, 429),
                    },
                },
            },
            "/api/dev/patches/{patch_id}": {
                "delete": {
                    "summary": "Kill switch (role dev_admin): stop serving the patch now; history kept, spec untouched",
                    "security": bearer,
                    "parameters": [
                        {"name": "patch_id", "in": "path", "required": True, "schema": {"type": "string"}},
                        {"name": "reason", "in": "query", "required": False, "schema": {"type": "string"}},
                    ],
                    "responses": {
                        "200": {"description": "Switched off (or already off)"},
                        **_errors(400, 401, 403, 404, 429, 503),
                    },
                }
            },
            "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "Alive"}}}},
            "/readyz": {
                "get": {
                    "summary": "Readiness: the patch catalog is loaded",
                    "responses": {"200": {"description": "Ready"}, "503": {"description": "Not ready"}},
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "responses": {"200": {"description": "Text exposition format"}},
                }
            },
            "/openapi.json": {
                "get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1"}}}
            },
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "Token from `selfheal token create`"}
            },
            "schemas": {
                "SelfHealRequest": SelfHealRequest.model_json_schema(),
                "OutcomeBatch": OutcomeBatch.model_json_schema(
                    ref_template="#/components/schemas/OutcomeBatch/$defs/{model}"
                ),
                "PatchBody": PatchSpec.model_json_schema(
                    by_alias=False, ref_template="#/components/schemas/PatchBody/$defs/{model}"
                ),
                "SelfHealResponse": {
                    "type": "object",
                    "required": ["patch", "envelope", "receipt"],
                    "properties": {
                        "receipt": {
                            "type": "string",
                            "maxLength": 200,
                            "description": "Proof that this patch was served to this token: send it back, "
                            "unread, in `receipt` of every outcome report of this patch.",
                        },
                        "patch": {
                            "type": "object",
                            "properties": {
                                "id": {"type": "string"},
                                "version": {"type": "string"},
                                "description": {"type": "string"},
                                "severity": {"type": "string"},
                                "matched_by": {"enum": ["exact", "code", "prefix", "status"]},
                                "rule": {"type": "string"},
                            },
                        },
                        "envelope": {
                            "type": "object",
                            "required": ["format", "payload", "signatures"],
                            "properties": {
                                "format": {"const": "selfheal.patch.v1"},
                                "payload": {
                                    "type": "string",
                                    "contentEncoding": "base64",
                                    "description": "Canonical JSON: patch_id, version, sequence, operations, "
                                    "rollback_operations, issued_at, expires_at, …",
                                },
                                "signatures": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "properties": {
                                            "alg": {"const": "Ed25519"},
                                            "keyId": {"type": "string"},
                                            "signature": {"type": "string", "contentEncoding": "base64"},
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
                "Error": _ERROR,
            },
        },
    }
