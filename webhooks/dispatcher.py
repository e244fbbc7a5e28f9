"""The delivery worker: fans each run's outbox out to endpoints, then sends what is due.

One pass (:meth:`Dispatcher.pass_once`):

1. **Fan-out.** Every run whose outbox is pending (``outbox_pending``, set in the same update that
   stored the run, see ``scoring.runs``) yields its events for every active endpoint; they are
   inserted as deliveries (one per endpoint and ``webhook-id``, unique), then the flag is cleared.
   A crash between the two repeats the fan-out, and the unique index drops the repeats.
2. **Claim and send.** Every endpoint with deliveries due gets its own task, which claims them a
   page at a time (their ``next_at`` pushed a lease ahead) and sends them in order; the pass does
   not wait for it, and an endpoint with a task in flight is skipped by later passes, so a slow
   endpoint only ever delays itself. A global semaphore bounds the attempts in flight.

An acknowledged (2xx) delivery is ``delivered`` and never sent again (only an explicit replay
re-sends it, with the same ``webhook-id``). A failed one is retried after the configured schedule
with jitter; after the last retry it is ``failed``. An endpoint failing every attempt for long
enough is disabled and the audit log says so. Each tenant's deliveries per minute are capped by
its plan: over the cap, a delivery waits for the next minute (not counted as a failure).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tenants.audit import AuditLog
from tenants.plans import limits_for
from webhooks.addresses import Resolver
from webhooks.config import WebhookConfig
from webhooks.events import events_for
from webhooks.repository import DELIVERED, FAILED, PENDING, WebhookStore
from webhooks.sender import Outcome, Sender
from webhooks.signing import SecretKeeper

__all__ = ["Dispatcher", "new_delivery"]

log = logging.getLogger("insider_selling.webhooks")

Clock = Callable[[], datetime]
#: deliveries of one endpoint claimed at once; their lease outlasts the page's attempts (each is
#: bounded by the timeout), so no other pass takes them while this one is still sending
CLAIM_PAGE = 20


def new_delivery(
    endpoint: dict[str, Any], msg_id: str, type_: str, payload: dict[str, Any], now: datetime
) -> dict[str, Any]:
    return {
        "delivery_id": "whd_" + secrets.token_hex(12),
        "endpoint_id": endpoint["endpoint_id"],
        "tenant_id": endpoint["tenant_id"],
        "msg_id": msg_id,
        "type": type_,
        "payload": payload,
        "status": PENDING,
        "attempts": 0,
        "created_at": now,
        "next_at": now,
        "last_status_code": None,
        "last_error": None,
        "delivered_at": None,
    }


class Dispatcher:
    def __init__(
        self,
        db: Any,
        config: WebhookConfig,
        *,
        resolver: Resolver | None = None,
        clock: Clock = lambda: datetime.now(UTC),
        on_disabled: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
    ) -> None:
        if config.server_key is None:
            raise ValueError("webhooks need a server key")
        self.store = WebhookStore(db)
        self.audit = AuditLog(db)
        self.config = config
        self.clock = clock
        self.sender = Sender(config, SecretKeeper(config.server_key), resolver)
        self.slots = asyncio.Semaphore(config.concurrency)
        self.in_flight: dict[str, asyncio.Task[None]] = {}
        self._minute: dict[str, tuple[int, int]] = {}  # tenant -> (minute, deliveries sent in it)
        self._wake = asyncio.Event()
        self.on_disabled = on_disabled

    async def aclose(self) -> None:
        for task in list(self.in_flight.values()):
            task.cancel()
        for task in list(self.in_flight.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.sender.aclose()

    def wake(self) -> None:
        """Start a pass now (a run just stored its outbox)."""
        self._wake.set()

    async def fan_out(self) -> int:
        queued = 0
        for run in await self.store.pending_outboxes():
            endpoints = await self.store.active_endpoints()
            now = self.clock()
            deliveries = [
                new_delivery(endpoint, event.msg_id, event.type, event.payload, now)
                for endpoint in endpoints
                for event in events_for(endpoint, run)
            ]
            queued += await self.store.enqueue(deliveries)
            await self.store.clear_outbox(run["run_id"])
            log.info("webhook outbox fanned out", extra={"run_id": run["run_id"], "deliveries": len(deliveries)})
        return queued

    async def pass_once(self) -> int:
        """Fan out, then start a task for every endpoint with deliveries due and none in flight;
        returns how many tasks started."""
        await self.fan_out()
        started = 0
        for endpoint_id in await self.store.due_endpoints(self.clock(), self.config.batch):
            if endpoint_id in self.in_flight:
                continue
            task = asyncio.create_task(self._endpoint(endpoint_id), name=f"webhook-{endpoint_id}")
            self.in_flight[endpoint_id] = task
            task.add_done_callback(self._done)
            started += 1
        return started

    def _done(self, task: asyncio.Task[None]) -> None:
        for endpoint_id, running in list(self.in_flight.items()):
            if running is task:
                del self.in_flight[endpoint_id]

    async def run_forever(self) -> None:
        while True:
            try:
                await self.pass_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("webhook dispatch pass failed; the next pass retries")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.poll_seconds):
                    await self._wake.wait()
            self._wake.clear()

    async def idle(self) -> None:
        """Wait for every endpoint task started so far (tests, the benchmark)."""
        while self.in_flight:
            await asyncio.gather(*list(self.in_flight.values()), return_exceptions=True)

    def _allowed(self, tenant_id: str, per_minute: int, now: datetime) -> bool:
        minute = int(now.timestamp() // 60)
        seen, count = self._minute.get(tenant_id, (minute, 0))
        if seen != minute:
            count = 0
        if count >= per_minute:
            return False
        self._minute[tenant_id] = (minute, count + 1)
        return True

    async def _endpoint(self, endpoint_id: str) -> None:
        """An endpoint's due deliveries, claimed a page at a time and sent in order."""
        async with self.sender.new_client() as client:
            while True:
                now = self.clock()
                lease = now + timedelta(seconds=self.config.lease_seconds + CLAIM_PAGE * self.config.timeout)
                token = secrets.token_hex(8)
                page = await self.store.claim(endpoint_id, now, lease, token, CLAIM_PAGE)
                if not page:
                    return
                await self._send_page(endpoint_id, page, client)

    async def _send_page(self, endpoint_id: str, deliveries: list[dict[str, Any]], client: httpx.AsyncClient) -> None:
        endpoint = await self.store.endpoint(endpoint_id)
        tenant = None if endpoint is None else await self.store.tenants.find_one({"tenant_id": endpoint["tenant_id"]})
        per_minute = limits_for(tenant).webhook_deliveries_per_minute
        for delivery in sorted(deliveries, key=lambda d: d["created_at"]):
            now = self.clock()
            if endpoint is None:  # deleted meanwhile
                await self.store.deliveries.update_one(
                    {"delivery_id": delivery["delivery_id"]}, {"$set": {"status": FAILED, "last_error": "deleted"}}
                )
                continue
            if endpoint.get("state") != "active":  # paused or disabled: held until resumed
                await self.store.deliveries.update_one(
                    {"delivery_id": delivery["delivery_id"], "status": PENDING},
                    {"$set": {"next_at": now + timedelta(seconds=60)}},
                )
                continue
            if not self._allowed(endpoint["tenant_id"], per_minute, now):
                next_minute = datetime.fromtimestamp((int(now.timestamp() // 60) + 1) * 60, UTC)
                await self.store.deliveries.update_one(
                    {"delivery_id": delivery["delivery_id"], "status": PENDING}, {"$set": {"next_at": next_minute}}
                )
                continue
            async with self.slots:
                outcome = await self.sender.send(endpoint, delivery["msg_id"], delivery["payload"], client)
            endpoint = await self._record(endpoint, delivery, outcome)

    async def _record(
        self, endpoint: dict[str, Any], delivery: dict[str, Any], outcome: Outcome
    ) -> dict[str, Any] | None:
        now = self.clock()
        attempt = {
            "delivery_id": delivery["delivery_id"],
            "endpoint_id": endpoint["endpoint_id"],
            "tenant_id": endpoint["tenant_id"],
            "msg_id": delivery["msg_id"],
            "type": delivery["type"],
            "at": now,
            "status": outcome.status,
            "status_code": outcome.status_code,
            "latency_ms": outcome.latency_ms,
            "error": outcome.error,
            "response": outcome.excerpt,
        }
        attempts = int(delivery.get("attempts", 0)) + 1
        changes: dict[str, Any] = {"last_status_code": outcome.status_code, "last_error": outcome.error}
        if outcome.ok:
            changes.update(status=DELIVERED, delivered_at=now)
            await self.store.settle(delivery["delivery_id"], changes, attempt)
            if endpoint.get("consecutive_failures"):
                return await self.store.update_endpoint(
                    endpoint["endpoint_id"], {"consecutive_failures": 0, "failing_since": None, "last_success_at": now}
                )
            return endpoint
        schedule = self.config.retry_schedule
        if attempts > len(schedule):
            changes["status"] = FAILED
        else:
            wait = schedule[attempts - 1] * (1 + random.uniform(-self.config.jitter, self.config.jitter))
            changes["next_at"] = now + timedelta(seconds=max(0.0, wait))
        await self.store.settle(delivery["delivery_id"], changes, attempt)
        failures = int(endpoint.get("consecutive_failures") or 0) + 1
        since = endpoint.get("failing_since") or now
        since = since if since.tzinfo else since.replace(tzinfo=UTC)
        update: dict[str, Any] = {"consecutive_failures": failures, "failing_since": since}
        disable = (
            failures >= self.config.disable_after_attempts
            and (now - since).total_seconds() >= self.config.disable_after_seconds
        )
        if disable:
            update.update(state="disabled", disabled_at=now, disabled_reason=f"{failures} failed attempts in a row")
        result = await self.store.update_endpoint(endpoint["endpoint_id"], update)
        if disable:
            log.warning(
                "webhook endpoint disabled after repeated failures",
                extra={"endpoint_id": endpoint["endpoint_id"], "failures": failures},
            )
            await self.audit.record(
                None,
                "webhook.disabled",
                tenant_id=endpoint["tenant_id"],
                target_type="webhook_endpoint",
                target_id=endpoint["endpoint_id"],
                details={"by": "delivery-worker", "failures": failures, "since": since.isoformat()},
            )
        return result
