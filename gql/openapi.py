"""The OpenAPI 3.1 document of the REST path, generated from the contract constants."""

from __future__ import annotations

from typing import Any

from scoring.contract import COIN_FIELDS, DESCRIPTION
from scoring.track import BAND_IDS, MAX_TOP_N, TOP_N, WINDOWS

TRACK_PATH = "/v1/insider-selling/track-record"

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
                'Weak tag of the scoring run and the parameters, e.g. W/"run_...-100-0.0" (with as_of, the '
                "time asked for too); send it back in If-None-Match"
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
                            "name": "as_of",
                            "in": "query",
                            "required": False,
                            "description": (
                                "Point in time (ISO 8601 with a timezone): exactly what the scoring run in force "
                                "then served, from the stored runs. A time before the retention limit is a 400 "
                                "(code before_retention) that names the limit; a time in the future is a 400."
                            ),
                            "schema": {"type": "string", "format": "date-time"},
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
            },
            TRACK_PATH: track_record_path(request_id, rate_headers, draft_headers),
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
                **TRACK_SCHEMAS,
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


_NUM_OR_NULL: dict[str, Any] = {"type": ["number", "null"]}
TRACK_SCHEMAS: dict[str, Any] = {
    "TrackSelection": {
        "type": "object",
        "required": ["id", "kind", "label", "n", "coins", "runs", "mean_excess_return", "ci95_low", "ci95_high"],
        "properties": {
            "id": {"type": "string"},
            "kind": {"type": "string", "enum": ["top", "listed", "band", "universe"]},
            "label": {"type": "string"},
            "n": {"type": "integer"},
            "coins": {"type": "integer"},
            "runs": {"type": "integer"},
            "mean_excess_return": _NUM_OR_NULL,
            "ci95_low": _NUM_OR_NULL,
            "ci95_high": _NUM_OR_NULL,
            "hit_rate": _NUM_OR_NULL,
            "mean_return": _NUM_OR_NULL,
            "blocks": {"type": "integer"},
            "coin_only_ci95_low": _NUM_OR_NULL,
            "coin_only_ci95_high": _NUM_OR_NULL,
        },
    },
    "TrackPoint": {
        "type": "object",
        "required": ["run_id", "at", "closes_at", "top_excess", "listed_excess", "top_cumulative", "listed_cumulative"],
        "properties": {
            "run_id": {"type": "string"},
            "at": {"type": "string", "format": "date-time"},
            "closes_at": {"type": "string", "format": "date-time"},
            "model_version": {"type": ["string", "null"]},
            "listed": {"type": "integer"},
            "universe_return": _NUM_OR_NULL,
            "top_excess": {"type": "number"},
            "listed_excess": {"type": "number"},
            "top_cumulative": {"type": "number"},
            "listed_cumulative": {"type": "number"},
        },
    },
    "TrackRecordResponse": {
        "type": "object",
        "required": ["data", "meta"],
        "properties": {
            "data": {
                "type": "object",
                "required": ["window", "benchmark", "top_n", "runs", "from", "to", "selections", "series"],
                "properties": {
                    "window": {"type": "string", "enum": list(WINDOWS)},
                    "hours": {"type": "integer"},
                    "benchmark": {"type": "string"},
                    "top_n": {"type": "integer"},
                    "band": {"type": ["string", "null"]},
                    "runs": {"type": "integer"},
                    "from": {"type": "string", "format": "date-time"},
                    "to": {"type": "string", "format": "date-time"},
                    "model_versions": {"type": "array", "items": {"type": "string"}},
                    "simulated": {"type": "boolean"},
                    "bootstrap": {"type": "object"},
                    "selections": {"type": "array", "items": {"$ref": "#/components/schemas/TrackSelection"}},
                    "series": {"type": "array", "items": {"$ref": "#/components/schemas/TrackPoint"}},
                },
            },
            "meta": {"$ref": "#/components/schemas/Meta"},
        },
    },
}


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


def track_record_path(
    request_id: dict[str, Any], rate_headers: dict[str, Any], draft_headers: dict[str, Any]
) -> dict[str, Any]:
    """``GET /v1/insider-selling/track-record``: authenticated, scoped and charged as the data path."""
    return {
        "get": {
            "operationId": "getInsiderSellingTrackRecord",
            "summary": "Get the live track record",
            "description": (
                "Realized forward excess returns (against the universe median) of the scoring runs whose window "
                "has closed, computed when each window closed from the prices stored then, under each run's "
                "own model version, with 95 % intervals from a bootstrap over coins and blocks of time: the top "
                "N of each run, every listed coin, each score band and the universe; and the chart's series "
                "(runs whose windows do not overlap, compounded). JSON, or CSV (one row per selection) with "
                "Accept: text/csv. A range longer than 366 days is cut to the 366 days ending at `to`."
            ),
            "parameters": [
                _query(
                    "window", "24h or 7d. Default 24h.", {"type": "string", "enum": list(WINDOWS), "default": "24h"}
                ),
                _query(
                    "model_version",
                    "Only runs scored by this model version.",
                    {"type": "string", "pattern": "^[A-Za-z0-9._+-]{1,64}$"},
                ),
                _query("band", "Only this score band among the bands.", {"type": "string", "enum": list(BAND_IDS)}),
                _query(
                    "top_n",
                    f"The top N of each run. 1 to {MAX_TOP_N}. Default {TOP_N}.",
                    {"type": "integer", "minimum": 1, "maximum": MAX_TOP_N, "default": TOP_N},
                ),
                _query(
                    "from", "Earliest run time. Default 90 days before `to`.", {"type": "string", "format": "date-time"}
                ),
                _query("to", "Latest run time. Default now.", {"type": "string", "format": "date-time"}),
            ],
            "responses": {
                "200": {
                    "description": "The track record",
                    "headers": {**request_id, **rate_headers, **draft_headers},
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/TrackRecordResponse"}},
                        "text/csv": {"schema": {"type": "string"}},
                    },
                },
                "400": _error("Invalid, unknown or repeated parameter"),
                "401": _error("Missing, malformed, unknown, revoked or expired API key"),
                "403": _error("The key lacks the signals:read scope"),
                "405": _error("Method not allowed"),
                "429": {
                    **_error("Rate limit or monthly quota exceeded"),
                    "headers": {**rate_headers, **draft_headers, "Retry-After": {"schema": {"type": "integer"}}},
                },
                "503": _error("The rate limiter is unavailable"),
            },
        }
    }
