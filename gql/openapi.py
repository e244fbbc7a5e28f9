"""The OpenAPI 3.1 document of the REST path, generated from the contract constants."""

from __future__ import annotations

from typing import Any

from scoring.contract import COIN_FIELDS, DESCRIPTION
from scoring.model import PHASES
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
_SUB = "Sub-score from 0 to 1 (higher: more pressure): "
#: Each coin field's description: what it is, its unit and its range (the seed's wording, made exact).
COIN_DESCRIPTIONS: dict[str, str] = {
    "coin_id": "Canonical coin slug, e.g. bitcoin.",
    "symbol": "Ticker symbol, e.g. BTC.",
    "name": "Display name.",
    "score": (
        "Composite hedge-pressure score, greater than 0 and at most 10 (coins at 0 are not listed). Bands "
        "calibrated on real data: below 2.5 the weaker half of listed coins, 2.5 to 5 the stronger half below "
        "the top tenth, 5 to 7.5 the top tenth, 7.5 and above the top hundredth."
    ),
    "avg_funding_72h": (
        "Average funding rate across venues over the trailing 72 hours, per 8 hours, as a decimal: "
        "-0.00012 is -0.012 % per 8 h. Venues' 1 h, 4 h and 8 h rates are normalised to 8 h first."
    ),
    "funding_magnitude": _SUB + "the absolute size of negative funding.",
    "funding_persistence": _SUB + "how consistently funding stays negative.",
    "wallet_concentration": _SUB + "top-holder, insider, dev, sniper, bundler and old-wallet concentration.",
    "holder_quality_deterioration": _SUB
    + "fragile holder base, top-heavy supply, liquidity weakness and contract/security context.",
    "coordination_risk": _SUB + "wallet fragmentation, old-wallet flow, churn and short-window holder changes.",
    "distribution_pressure": _SUB + "direct wallet/flow pressure and derivatives-confirmed selling pressure.",
    "market_confirmation": _SUB + "funding, OI, basis, CVD, price path and persistence confirmation.",
    "manipulation_phase": (
        "Phase label, one of: short-squeeze-risk (shorts covering), active-hedge-pressure (funding not fading "
        "and OI rising), persistent-shorting (negative most of the window for 2+ days), supply-risk-supported "
        "(strong supply context), emerging-pressure (streak under 24 h), hedge-pressure (any other listed "
        "coin); none is never listed (score 0)."
    ),
    "consecutive_negative_days": "Complete UTC days in a row with negative average funding (0 or more).",
    "price_change_24h": "Trailing 24 h price change, in percent: -3.21 is -3.21 %.",
    "price_change_7d": "Trailing 7 d price change, in percent: -11.4 is -11.4 %.",
    "top10_holders_pct": (
        "Share of supply held by the top 10 holders, in percent (0 to 100); null without on-chain data."
    ),
    "volume_to_liquidity_24h": (
        "24 h DEX volume divided by DEX liquidity, a ratio (2.0: volume twice the liquidity); null without "
        "on-chain data. High values can indicate fragile churn."
    ),
    "old_wallet_swap_pct_1d": (
        "Share of the last day's DEX swaps made by older wallets, in percent (0 to 100); null without on-chain data."
    ),
    "holders_change_pct": (
        "Holder-count change since the previous successful run, as a decimal: 0.02 is +2 %; null when unknown."
    ),
    "top10_holders_pct_change": (
        "Change in the top-10 holders' share since the previous successful run, in percentage points; null "
        "when unknown."
    ),
    "signal_start_date": "ISO 8601 UTC time when the current negative-funding streak began.",
    "updated_at": "ISO 8601 UTC time of the most recent score recomputation.",
}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def openapi_document(version: str = "0.1.0") -> dict[str, Any]:
    coin_props: dict[str, dict[str, Any]] = {}
    for name, kind in COIN_FIELDS.items():
        prop = {**_TYPES[kind], "description": COIN_DESCRIPTIONS[name]}
        if name == "manipulation_phase":
            prop["enum"] = list(PHASES)
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
                        "methodology": {"type": "string", "description": "How the score is built, in brief."},
                        "update_frequency": {
                            "type": "string",
                            "description": 'How often the scores are recomputed, e.g. "every 30 minutes".',
                        },
                        "exchanges": {
                            "type": "array",
                            "items": {"type": "string"},
                            "description": "Display names of the monitored venues.",
                        },
                    },
                },
                "Meta": {
                    "type": "object",
                    "required": ["request_id", "timestamp", "elapsed_ms"],
                    "properties": {
                        "request_id": {
                            "type": "string",
                            "description": "This request's id, also in the X-Request-Id header.",
                        },
                        "timestamp": {
                            "type": "string",
                            "format": "date-time",
                            "description": "ISO 8601 UTC time the response was made.",
                        },
                        "elapsed_ms": {"type": "number", "description": "Time spent answering, in milliseconds."},
                    },
                },
                "DataResponse": {
                    "type": "object",
                    "required": ["data", "meta"],
                    "properties": {
                        "data": {
                            "type": "object",
                            "description": "The ranked coins and the signal's metadata.",
                            "required": ["coins", "count", "description", "signal"],
                            "properties": {
                                "coins": {
                                    "type": "array",
                                    "items": {"$ref": "#/components/schemas/Coin"},
                                    "description": "Coins scoring above 0 and at least min_score, by score descending.",
                                },
                                "count": {"type": "integer", "description": "Number of rows in coins."},
                                "description": {
                                    "type": "string",
                                    "description": "Plain-language summary of the signal for client display.",
                                },
                                "signal": {
                                    "$ref": "#/components/schemas/Signal",
                                    "description": "Methodology, update frequency and monitored venues.",
                                },
                            },
                        },
                        "meta": {"$ref": "#/components/schemas/Meta", "description": "Request id and timing."},
                    },
                },
                **TRACK_SCHEMAS,
                "Error": {
                    "type": "object",
                    "required": ["error", "meta"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "description": "What went wrong.",
                            "required": ["type", "code", "message"],
                            "properties": {
                                "type": {
                                    "type": "string",
                                    "description": "The class of error (one per HTTP status family).",
                                    "enum": [
                                        "invalid_request_error",
                                        "authentication_error",
                                        "permission_error",
                                        "rate_limit_error",
                                        "api_error",
                                    ],
                                },
                                "code": {
                                    "type": "string",
                                    "description": (
                                        "Machine-readable code, e.g. parameter_invalid, invalid_api_key, "
                                        "insufficient_scope, rate_limited, not_ready."
                                    ),
                                },
                                "param": {
                                    "type": "string",
                                    "description": "The query parameter at fault, when there is one.",
                                },
                                "message": {"type": "string", "description": "What to do, for a person to read."},
                            },
                        },
                        "meta": {"$ref": "#/components/schemas/Meta", "description": "Request id and timing."},
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


_RET = "as a decimal (0.01 is +1 %)"
_TRACK_DESCRIPTIONS: dict[str, dict[str, str]] = {
    "TrackSelection": {
        "id": "Stable id of the selection, e.g. top, listed, band-5-7.5, universe.",
        "kind": "top (the top N of each run), listed (every listed coin), band (one score band) or universe.",
        "label": "What the selection is, for display.",
        "n": "Coin-run pairs in the selection.",
        "coins": "Distinct coins in the selection.",
        "runs": "Closed runs that contributed.",
        "mean_excess_return": f"Mean forward return minus the universe median, {_RET}; null without pairs.",
        "ci95_low": f"Lower end of the 95 % bootstrap interval of mean_excess_return, {_RET}; null without pairs.",
        "ci95_high": f"Upper end of the 95 % bootstrap interval of mean_excess_return, {_RET}; null without pairs.",
        "hit_rate": "Share of pairs whose return was below the universe median, 0 to 1; null without pairs.",
        "mean_return": f"Mean raw forward return, {_RET}; null without pairs.",
        "blocks": "Blocks of time resampled by the bootstrap.",
        "coin_only_ci95_low": f"Lower end of the 95 % interval resampling coins only, {_RET}.",
        "coin_only_ci95_high": f"Upper end of the 95 % interval resampling coins only, {_RET}.",
    },
    "TrackPoint": {
        "run_id": "The run.",
        "at": "ISO 8601 UTC time of the run.",
        "closes_at": "ISO 8601 UTC time its return window closed.",
        "model_version": "The model version that scored the run.",
        "listed": "Coins listed by the run.",
        "universe_return": f"Median forward return of every scored coin, {_RET}.",
        "top_excess": f"Mean excess return of the run's top N, {_RET}.",
        "listed_excess": f"Mean excess return of the run's listed coins, {_RET}.",
        "top_cumulative": f"Top N excess compounded over the chain of non-overlapping windows so far, {_RET}.",
        "listed_cumulative": f"Listed coins' excess compounded over the chain so far, {_RET}.",
    },
    "TrackRecordResponse": {
        "data": "The track record of the runs in range.",
        "meta": "Request id and timing.",
    },
    "TrackRecordData": {
        "window": "The forward-return window: 24h or 7d.",
        "hours": "The window in hours (24 or 168).",
        "benchmark": "What excess returns are measured against (the universe median).",
        "top_n": "N of the top-N selection.",
        "band": "The score band asked for, or null for every band.",
        "runs": "Closed runs in range.",
        "from": "ISO 8601 UTC start of the range.",
        "to": "ISO 8601 UTC end of the range.",
        "model_versions": "Model versions of the runs in range.",
        "simulated": "True when the runs scored the demo's simulated market, not real coins.",
        "bootstrap": "The bootstrap's settings: draws, block length in hours, seed.",
        "selections": "One row per selection: top N, listed, each score band, universe.",
        "series": "The chart's points: runs whose windows do not overlap, oldest first, compounded.",
    },
}


def _describe_track(schemas: dict[str, Any]) -> dict[str, Any]:
    """The track-record schemas with every property described (units included)."""
    out = {}
    for name, schema in schemas.items():
        props = {k: {**v, "description": _TRACK_DESCRIPTIONS[name][k]} for k, v in schema["properties"].items()}
        if name == "TrackRecordResponse":
            data = props["data"]
            inner = {
                k: {**v, "description": _TRACK_DESCRIPTIONS["TrackRecordData"][k]}
                for k, v in data["properties"].items()
            }
            props["data"] = {**data, "properties": inner}
        out[name] = {**schema, "properties": props}
    return out


TRACK_SCHEMAS = _describe_track(TRACK_SCHEMAS)


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
