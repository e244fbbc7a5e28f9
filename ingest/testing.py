"""Replaying recorded venue responses for the tests and the benchmark; never the network.

A recording is a JSON file ``{"source": "...", "host": "...", "responses": [...]}``, each
response ``{"url": ..., "body": ..., "status": ...}``. A response answers the first request whose
URL contains ``url`` (and whose body contains ``match_body``, for POST APIs such as
Hyperliquid's). ccxt exchanges get :meth:`Replay.ccxt_fetch`
in place of their ``fetch`` (as ccxt's own static response tests do); httpx clients get
:meth:`Replay.transport`. Unmatched requests are refused like an unreachable host.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from ccxt.base import errors as ccxt_errors

__all__ = ["Recorded", "Replay", "load_recordings"]


@dataclass(slots=True)
class Recorded:
    url: str
    body: Any = None
    status: int = 200
    match_body: str | None = None
    #: ``"hang"`` never answers; ``"refuse"`` fails to connect
    fault: str | None = None
    #: where this answer's shape comes from (documented example, ccxt source or static data)
    source: str | None = None
    #: the host this answer belongs to (set from the recording file)
    host: str | None = None

    def matches(self, url: str, body: str | None) -> bool:
        if self.host is not None and urlsplit(url).hostname != self.host:
            return False
        if self.url not in url:
            return False
        return self.match_body is None or (body is not None and self.match_body in body)

    def text(self) -> str:
        return self.body if isinstance(self.body, str) else json.dumps(self.body)


def load_recordings(directory: Path) -> dict[str, list[Recorded]]:
    """``name -> responses`` for every ``*.json`` recording in ``directory``."""
    out = {}
    for path in sorted(directory.glob("*.json")):
        data = json.loads(path.read_text())
        out[path.stem] = [Recorded(**r, host=data.get("host")) for r in data["responses"]]
    return out


@dataclass(slots=True)
class Replay:
    responses: list[Recorded]
    #: requests per host, for the benchmark
    requests: Counter[str] = field(default_factory=Counter)
    refuse_unmatched: bool = True

    def find(self, url: str, body: str | None) -> Recorded | None:
        for r in self.responses:
            if r.matches(url, body):
                return r
        return None

    async def ccxt_fetch(self, url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        """Stands in for ``ccxt.Exchange.fetch``: parsed JSON, the text of a non-JSON body,
        and ccxt's exceptions for refused connections and HTTP errors."""
        self.requests[urlsplit(url).hostname or url] += 1
        found = self.find(url, body)
        await asyncio.sleep(0)
        if found is None or found.fault == "refuse":
            raise ccxt_errors.NetworkError(f"Cannot connect to host {urlsplit(url).hostname}")
        if found.fault == "hang":
            await asyncio.Event().wait()
        text = found.text()
        if found.status == 429:
            raise ccxt_errors.RateLimitExceeded(f"{found.status} {text[:80]}")
        if found.status >= 500:
            raise ccxt_errors.ExchangeNotAvailable(f"{found.status} {text[:80]}")
        if found.status >= 400:
            raise ccxt_errors.BadRequest(f"{found.status} {text[:80]}")
        try:
            return json.loads(text)
        except ValueError:
            return text

    def transport(self) -> httpx.AsyncBaseTransport:
        async def handle(request: httpx.Request) -> httpx.Response:
            self.requests[request.url.host] += 1
            body = request.content.decode() if request.content else None
            found = self.find(str(request.url), body)
            if found is None or found.fault == "refuse":
                raise httpx.ConnectError("connection refused", request=request)
            if found.fault == "hang":
                await asyncio.Event().wait()
            return httpx.Response(found.status, text=found.text(), request=request)

        return httpx.MockTransport(handle)
