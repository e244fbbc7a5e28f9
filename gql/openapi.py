"""The OpenAPI 3.1 document of the REST path, generated from the contract constants."""

from __future__ import annotations

from typing import Any

from scoring.contract import COIN_FIELDS, DESCRIPTION

__all__ = ["openapi_document"]

_TYPES: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "number": {"type": "number"},
    "integer": {"type": "integer"},
    "number|null": {"type": ["number", "null"]},
}
_DATE_FIELDS = {"signal_start_date", "updated_at"}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def openapi_document(version: str = "0.1.0") -> dict[str, Any]:
    coin_props: dict[str, dict[str, Any]] = {}
    for name, kind in COIN_FIELDS.items():
        prop = dict(_TYPES[kind])
        if name in _DATE_FIELDS:
            prop["format"] = "date-time"
        if name == "score":
            prop.update(minimum=0, maximum=10, exclusiveMinimum=0)
        coin_props[name] = prop
    rate_headers = {
        h: {"schema": {"type": "integer"}, "description": d}
        for h, d in (
            ("RateLimit-Limit", "Requests allowed in the current window"),
            ("RateLimit-Remaining", "Requests left in the current window"),
            ("RateLimit-Reset", "Seconds until the window resets"),
        )
    }
    draft_headers = {
        "RateLimit-Policy": {
            "schema": {"type": "string"},
            "description": (
                "The key's quota policies (IETF draft-ietf-httpapi-ratelimit-headers), e.g. "
                '"minute";q=600;w=60, "month";q=1000000;w=2592000'
            ),
        },
        "RateLimit": {
            "schema": {"type": "string"},
            "description": ('The tightest policy now, e.g. "minute";r=598;t=1 (remaining, seconds to reset)'),
        },
    }
    request_id = {"X-Request-Id": {"schema": {"type": "string"}, "description": "Echoes meta.request_id"}}
    validators = {
        "ETag": {
            "schema": {"type": "string"},
            "description": (
                'Weak tag of the scoring run and the parameters, e.g. W/"run_...-100-0.0"; send it back in '
                "If-None-Match"
            ),
        },
        "Cache-Control": {
            "schema": {"type": "string"},
            "description": ("private, max-age=<seconds until the next scoring run is due>"),
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Insider Selling API", "version": version, "description": DESCRIPTION},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": {
            "/v1/insider-selling/data": {
                "get": {
                    "operationId": "getInsiderSellingData",
                    "summary": "Get insider selling data",
                    "description": (
                        "Returns coins ranked by their composite insider selling pressure score, descending. "
                        "Only coins with score > 0 are listed."
                    ),
                    "parameters": [
                        {
                            "name": "limit",
                            "in": "query",
                            "required": False,
                            "description": "Maximum number of coins to return. 1 to 500. Default 100.",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 100},
                        },
                        {
                            "name": "min_score",
                            "in": "query",
                            "required": False,
                            "description": "Filter to coins scoring at or above this threshold. 0 to 10. Default 0.",
                            "schema": {"type": "number", "minimum": 0, "maximum": 10, "default": 0},
                        },
                        {
                            "name": "If-None-Match",
                            "in": "header",
                            "required": False,
                            "description": (
                                "An ETag of an earlier response: 304 while the data is unchanged. A "
                                "revalidation is a request: it needs a valid key with signals:read and is "
                                "charged like any other (429 when over a limit). '*' is treated as a miss."
                            ),
                            "schema": {"type": "string"},
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "The ranked coins",
                            "headers": {**request_id, **validators, **rate_headers, **draft_headers},
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/DataResponse"}}},
                        },
                        "304": {
                            "description": "Not modified: If-None-Match names the current data (charged as a request)",
                            "headers": {**request_id, **validators, **rate_headers, **draft_headers},
                        },
                        "400": _error("Invalid, unknown or repeated parameter"),
                        "401": _error("Missing, malformed, unknown, revoked or expired API key"),
                        "403": _error("The key lacks the signals:read scope"),
                        "404": _error("No such path"),
                        "405": _error("Method not allowed"),
                        "429": {
                            **_error("Rate limit or monthly quota exceeded"),
                            "headers": {
                                **rate_headers,
                                **draft_headers,
                                "Retry-After": {"schema": {"type": "integer"}},
                            },
                        },
                        "503": _error("No scoring run has succeeded yet (not_ready)"),
                    },
                }
            }
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "sk_live_..."}},
            "schemas": {
                "Coin": {
                    "type": "object",
                    "required": list(COIN_FIELDS),
                    "properties": coin_props,
                    "additionalProperties": False,
                },
                "Signal": {
                    "type": "object",
                    "required": ["methodology", "update_frequency", "exchanges"],
                    "properties": {
                        "methodology": {"type": "string"},
                        "update_frequency": {"type": "string"},
                        "exchanges": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "Meta": {
                    "type": "object",
                    "required": ["request_id", "timestamp", "elapsed_ms"],
                    "properties": {
                        "request_id": {"type": "string"},
                        "timestamp": {"type": "string", "format": "date-time"},
                        "elapsed_ms": {"type": "number"},
                    },
                },
                "DataResponse": {
                    "type": "object",
                    "required": ["data", "meta"],
                    "properties": {
                        "data": {
                            "type": "object",
                            "required": ["coins", "count", "description", "signal"],
                            "properties": {
                                "coins": {"type": "array", "items": {"$ref": "#/components/schemas/Coin"}},
                                "count": {"type": "integer"},
                                "description": {"type": "string"},
                                "signal": {"$ref": "#/components/schemas/Signal"},
                            },
                        },
                        "meta": {"$ref": "#/components/schemas/Meta"},
                    },
                },
                "Error": {
                    "type": "object",
                    "required": ["error", "meta"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["type", "code", "message"],
                            "properties": {
                                "type": {
                                    "type": "string",
                                    "enum": [
                                        "invalid_request_error",
                                        "authentication_error",
                                        "permission_error",
                                        "rate_limit_error",
                                        "api_error",
                                    ],
                                },
                                "code": {"type": "string"},
                                "param": {"type": "string"},
                                "message": {"type": "string"},
                            },
                        },
                        "meta": {"$ref": "#/components/schemas/Meta"},
                    },
                },
            },
        },
    }
