"""HTTP caching: ETag and Cache-Control on REST and GraphQL GET, 304s that pass authentication,
scope and the limits like any request (``*`` is a miss), and the IETF draft rate-limit fields next
to the legacy ones."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import quote

from tenants.ratelimit import month_window
from tests.helpers import ApiClient

DATA = "/v1/insider-selling/data"
QUERY = "{ insiderSelling(limit: 5) { count coins { coinId score } } }"


def bearer(key: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **extra}


def max_age(cache_control: str) -> int:
    match = re.fullmatch(r"private, max-age=(\d+)", cache_control)
    assert match, cache_control
    return int(match.group(1))


async def issue(api: ApiClient, *, quota: int | None = None, scopes: tuple[str, ...] = ("signals:read",)) -> str:
    keys = api.services.keys
    tenant = await keys.create_tenant(None, "cache-test", "pro", quota_per_month=quota)
    return (await keys.issue_key(None, tenant["tenant_id"], "k", list(scopes))).key


async def test_rest_etag_cache_control_and_304(api: ApiClient) -> None:
    first = await api.http.get(DATA, params={"limit": 20, "min_score": 4}, headers=bearer(api.read_key))
    assert first.status_code == 200
    etag = first.headers["ETag"]
    run_id = (await api.services.leaderboard.current_run())["run_id"]
    assert etag == f'W/"{run_id}-20-4.0"'
    assert 0 <= max_age(first.headers["Cache-Control"]) <= 1800
    # the same parameters, spelled differently, are the same response
    again = await api.http.get(DATA, params={"min_score": "4.0", "limit": "20"}, headers=bearer(api.read_key))
    assert again.headers["ETag"] == etag
    other = await api.http.get(DATA, params={"limit": 21, "min_score": 4}, headers=bearer(api.read_key))
    assert other.headers["ETag"] != etag

    for if_none_match in (etag, etag.removeprefix("W/"), f'"x", {etag}'):
        cached = await api.http.get(
            DATA, params={"limit": 20, "min_score": 4}, headers=bearer(api.read_key, **{"If-None-Match": if_none_match})
        )
        assert cached.status_code == 304, if_none_match
        assert cached.content == b"" and cached.headers["ETag"] == etag
        assert cached.headers["X-Request-Id"].startswith("req_") and "Cache-Control" in cached.headers
        assert int(cached.headers["RateLimit-Remaining"]) <= int(cached.headers["RateLimit-Limit"])  # charged
    # "*" is no revalidation of a response the client never received: a miss (RFC 9110 13.1.2)
    for if_none_match in ("*", '"x", *'):
        star = await api.http.get(
            DATA, params={"limit": 20, "min_score": 4}, headers=bearer(api.read_key, **{"If-None-Match": if_none_match})
        )
        assert star.status_code == 200 and star.json()["data"] == first.json()["data"], if_none_match
    stale = await api.http.get(
        DATA,
        params={"limit": 20, "min_score": 4},
        headers=bearer(api.read_key, **{"If-None-Match": 'W/"run_old-20-4.0"'}),
    )
    assert stale.status_code == 200 and stale.json()["data"] == first.json()["data"]
    # a new run is a new tag
    api.services.leaderboard._run = {**api.services.leaderboard._run, "run_id": "run_next"}
    api.services.leaderboard._checked = float("inf")
    moved = await api.http.get(
        DATA, params={"limit": 20, "min_score": 4}, headers=bearer(api.read_key, **{"If-None-Match": etag})
    )
    assert moved.status_code == 200 and moved.headers["ETag"] == 'W/"run_next-20-4.0"'


async def test_a_revalidation_is_a_request_charged_and_refused_like_any_other(api: ApiClient) -> None:
    """Issue 17 #1: a key over its quota got 3,000 x 304 (``If-None-Match`` skipped every limit)."""
    key = await issue(api, quota=3)
    ok = await api.http.get(DATA, headers=bearer(key))
    assert ok.status_code == 200
    inm = {"If-None-Match": ok.headers["ETag"]}
    assert (await api.http.get(DATA, headers=bearer(key, **inm))).status_code == 304  # the second of three
    assert (await api.http.get(DATA, headers=bearer(key))).status_code == 200  # the third
    for headers in (bearer(key, **inm), bearer(key, **{"If-None-Match": "*"}), bearer(key)):
        refused = await api.http.get(DATA, headers=headers)
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "quota_exceeded", headers
        assert "ETag" not in refused.headers  # not even the current run id
    url = f"/graphql?query={quote(QUERY)}"
    for headers in (bearer(key, **inm), bearer(key, **{"If-None-Match": "*"})):
        refused = await api.http.get(url, headers=headers)
        assert refused.status_code == 429 and "ETag" not in refused.headers


async def test_a_graphql_revalidation_passes_the_per_minute_limit(api: ApiClient) -> None:
    keys = api.services.keys
    tenant = await keys.create_tenant(None, "cache-minute", "free", rate_limit_per_minute=2)
    key = (await keys.issue_key(None, tenant["tenant_id"], "k", ["signals:read"])).key
    url = f"/graphql?query={quote(QUERY)}"
    first = await api.http.get(url, headers=bearer(key))
    assert first.status_code == 200
    inm = {"If-None-Match": first.headers["ETag"]}
    again = await api.http.get(url, headers=bearer(key, **inm))
    assert again.status_code == 304 and again.headers["RateLimit-Remaining"] == "0"
    refused = await api.http.get(url, headers=bearer(key, **inm))
    assert refused.status_code == 429 and "Retry-After" in refused.headers and "ETag" not in refused.headers


async def test_a_304_still_needs_a_valid_key(api: ApiClient) -> None:
    ok = await api.http.get(DATA, headers=bearer(api.read_key))
    inm = {"If-None-Match": ok.headers["ETag"]}
    assert (await api.http.get(DATA, headers=inm)).status_code == 401
    assert (await api.http.get(DATA, headers=bearer("sk_live_" + "x" * 40, **inm))).status_code == 401
    manager = await issue(api, scopes=("keys:manage",))
    assert (await api.http.get(DATA, headers=bearer(manager, **inm))).status_code == 403
    revoked = await issue(api)
    assert (await api.http.get(DATA, headers=bearer(revoked, **inm))).status_code == 304
    key_id = "key_" + revoked[8:20]
    await api.services.keys.revoke_key(None, key_id)
    assert (await api.http.get(DATA, headers=bearer(revoked, **inm))).status_code == 401


async def test_graphql_get_etag_and_304(api: ApiClient) -> None:
    url = f"/graphql?query={quote(QUERY)}"
    first = await api.http.get(url, headers=bearer(api.read_key))
    assert first.status_code == 200 and "errors" not in first.json()
    etag = first.headers["ETag"]
    run_id = (await api.services.leaderboard.current_run())["run_id"]
    assert etag.startswith(f'W/"{run_id}-') and 0 <= max_age(first.headers["Cache-Control"]) <= 1800
    tenant = api.services.authenticator  # usage before the conditional requests
    month, _ = month_window(datetime.now(UTC))
    principal = await tenant.authenticate(f"Bearer {api.read_key}", "test")
    used = api.services.ratelimiter.pending_usage(principal.tenant_id, month)
    for _ in range(3):
        cached = await api.http.get(url, headers=bearer(api.read_key, **{"If-None-Match": etag}))
        assert cached.status_code == 304 and cached.content == b"" and cached.headers["ETag"] == etag
        assert "RateLimit-Remaining" in cached.headers
    assert api.services.ratelimiter.pending_usage(principal.tenant_id, month) == used + 3  # charged
    star = await api.http.get(url, headers=bearer(api.read_key, **{"If-None-Match": "*"}))
    assert star.status_code == 200 and star.json()["data"] == first.json()["data"]
    assert (await api.http.get(url, headers={"If-None-Match": etag})).status_code == 401
    # other variables, another tag; POST, viewer and errors carry none
    other = await api.http.get(f"/graphql?query={quote(QUERY.replace('5', '6'))}", headers=bearer(api.read_key))
    assert other.headers["ETag"] != etag
    posted = await api.http.post("/graphql", json={"query": QUERY}, headers=bearer(api.read_key))
    assert posted.status_code == 200 and "ETag" not in posted.headers
    viewer = await api.http.get(
        f"/graphql?query={quote('{ viewer { apiKey { keyId } } }')}",
        headers=bearer(api.read_key, **{"If-None-Match": "*"}),
    )
    assert viewer.status_code == 200 and "ETag" not in viewer.headers
    broken = await api.http.get(
        f"/graphql?query={quote('{ insiderSelling(limit: 0) { count } }')}", headers=bearer(api.read_key)
    )
    assert broken.status_code == 400 and "ETag" not in broken.headers


async def test_draft_rate_limit_fields_next_to_the_legacy_ones(api: ApiClient) -> None:
    response = await api.http.get(DATA, headers=bearer(api.read_key))
    h = response.headers
    principal = await api.services.authenticator.authenticate(f"Bearer {api.read_key}", "test")
    policy = h["RateLimit-Policy"]
    assert f'"minute";q={principal.per_minute};w=60' in policy
    assert re.search(rf'"month";q={principal.per_month};w=(2419200|2505600|2592000|2678400)$', policy)
    name, remaining, reset = re.fullmatch(r'"(\w+)";r=(\d+);t=(\d+)', h["RateLimit"]).groups()
    assert name == "minute" and remaining == h["RateLimit-Remaining"] and reset == h["RateLimit-Reset"]
    assert h["RateLimit-Limit"] == str(principal.per_minute)
    # a key with its own lower limit: two per-minute policies
    tenant = await api.services.keys.create_tenant(None, "two-limits", "pro")
    issued = await api.services.keys.issue_key(
        None, tenant["tenant_id"], "slow", ["signals:read"], rate_limit_per_minute=30
    )
    slow = await api.http.get(DATA, headers=bearer(issued.key))
    assert slow.headers["RateLimit-Policy"].startswith('"key";q=30;w=60, "tenant";q=600;w=60, "month";q=1000000;')
    assert slow.headers["RateLimit"].startswith('"key";r=')
    graphql = await api.http.post("/graphql", json={"query": QUERY}, headers=bearer(api.read_key))
    assert graphql.headers["RateLimit-Policy"] == policy and graphql.headers["RateLimit"].startswith('"minute";r=')
