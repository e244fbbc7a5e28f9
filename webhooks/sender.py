"""One attempt: check the address, sign, POST, read at most a small cap of the answer.

The request goes to the address that passed the check (the URL's host becomes the Host header and
the TLS server name), redirects are not followed (a 3xx is a failure), connections are never
reused (``max_keepalive_connections=0``: a pooled TLS connection to a shared address must never
carry another host's request), the environment's proxies are ignored, and the whole attempt,
body included, is bounded by the timeout.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson

from webhooks.addresses import Resolver, check_url, resolve, system_resolver
from webhooks.config import WebhookConfig
from webhooks.errors import BlockedAddress, InvalidArgument
from webhooks.signing import SecretKeeper

__all__ = ["Outcome", "Sender", "live_salts"]

USER_AGENT = "insider-selling-webhooks/1"


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    status: str  # succeeded | failed | blocked
    status_code: int | None
    latency_ms: float
    error: str | None = None
    excerpt: str = ""


def live_salts(endpoint: Mapping[str, Any], now: datetime) -> list[str]:
    """The salts of the secrets that sign now: the current one, and the previous one during the
    overlap after a rotation."""
    salts = [str(endpoint["salt"])]
    until = endpoint.get("previous_until")
    if endpoint.get("previous_salt") and until is not None:
        until = until if until.tzinfo else until.replace(tzinfo=UTC)
        if until > now:
            salts.append(str(endpoint["previous_salt"]))
    return salts


class Sender:
    def __init__(self, config: WebhookConfig, keeper: SecretKeeper, resolver: Resolver | None = None) -> None:
        self.config = config
        self.keeper = keeper
        self.resolver = resolver or system_resolver
        # one TLS context for every client (building one per client would cost milliseconds)
        self.tls = httpx.create_ssl_context()
        self.client = self.new_client()

    def new_client(self) -> httpx.AsyncClient:
        """A client for one endpoint's task: its own small pool, so one endpoint's connections are
        never scanned for another's requests (clients share :attr:`tls`)."""
        return httpx.AsyncClient(
            follow_redirects=False,
            trust_env=False,
            verify=self.tls,
            timeout=httpx.Timeout(self.config.timeout),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=0),
            headers={"user-agent": USER_AGENT},
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    def body(self, payload: Mapping[str, Any]) -> str:
        return orjson.dumps(payload).decode()

    async def send(
        self,
        endpoint: Mapping[str, Any],
        msg_id: str,
        payload: Mapping[str, Any],
        client: httpx.AsyncClient | None = None,
    ) -> Outcome:
        """One attempt (with ``client``, an endpoint task's own, or the shared one)."""
        client = client or self.client
        started = time.perf_counter()

        def outcome(status: str, code: int | None = None, error: str | None = None, excerpt: str = "") -> Outcome:
            latency = round((time.perf_counter() - started) * 1000, 1)
            return Outcome(status == "succeeded", status, code, latency, error, excerpt)

        url = str(endpoint["url"])
        try:
            scheme, host, port = check_url(url, allow_http=self.config.allow_http)
            address = await resolve(host, port, self.resolver, allow_private=self.config.allow_private)
        except (BlockedAddress, InvalidArgument) as exc:
            return outcome("blocked", error=str(exc))
        now = datetime.now(UTC)
        body = self.body(payload)
        parts = urlsplit(url)
        netloc = f"[{address}]" if ":" in address else address
        target = urlunsplit((scheme, f"{netloc}:{port}", parts.path or "/", parts.query, ""))
        headers = {
            "host": parts.netloc.rsplit("@", 1)[-1],
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": self.keeper.signature(
                str(endpoint["endpoint_id"]), live_salts(endpoint, now), msg_id, now, body
            ),
        }
        extensions = {"sni_hostname": host} if scheme == "https" else {}
        try:
            async with asyncio.timeout(self.config.timeout):
                request = client.build_request("POST", target, content=body, headers=headers, extensions=extensions)
                response = await client.send(request, stream=True)
                try:
                    excerpt = bytearray()
                    async for chunk in response.aiter_raw():
                        excerpt.extend(chunk[: self.config.response_cap - len(excerpt)])
                        if len(excerpt) >= self.config.response_cap:
                            break
                finally:
                    await response.aclose()
        except TimeoutError:
            return outcome("failed", error="timeout")
        except httpx.HTTPError as exc:
            return outcome("failed", error=type(exc).__name__)
        text = excerpt.decode("utf-8", "replace")[:512]
        if 200 <= response.status_code < 300:
            return outcome("succeeded", response.status_code, excerpt=text)
        return outcome("failed", response.status_code, error=f"HTTP {response.status_code}", excerpt=text)
