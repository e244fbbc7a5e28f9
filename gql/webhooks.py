"""GraphQL webhook operations (issue 22): endpoints, their deliveries, replay and the test ping.

``WebhookQuery`` and ``WebhookMutation`` are merged into the root types by ``gql/schema.py``. Every
field needs ``webhooks:manage`` (``admin`` implies it); :class:`webhooks.service.WebhookService`
holds the tenant rules and every bound, and its expected failures become GraphQL errors with
``extensions.code`` (``parameter_invalid`` with ``param``, ``not_found``, ``insufficient_scope``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from gql.admin import _context, _run
from gql.context import Context
from gql.permissions import WebhooksManage

if TYPE_CHECKING:
    from webhooks.service import WebhookService

__all__ = ["WebhookMutation", "WebhookQuery"]


def _service(info: Info[Context, Any]) -> WebhookService:
    service = info.context.services.webhooks
    if service is None:
        raise GraphQLError("webhooks are not available on this server", extensions={"code": "webhooks_disabled"})
    return service


def _utc(at: datetime | None) -> datetime | None:
    return None if at is None else (at if at.tzinfo else at.replace(tzinfo=UTC))


@strawberry.enum(description="What a webhook endpoint is sent.")
class WebhookEventType(Enum):
    COIN_LISTED = "coin.listed"
    COIN_DELISTED = "coin.delisted"
    COIN_SCORE_CROSSED = "coin.score_crossed"
    COIN_PHASE_CHANGED = "coin.phase_changed"
    RUN_COMPLETED = "run.completed"
    RUN_FAILED = "run.failed"


@strawberry.enum(description="Which crossings of the threshold `coin.score_crossed` reports.")
class CrossingDirection(Enum):
    UP = "up"
    DOWN = "down"
    BOTH = "both"


@strawberry.enum(description="Whether an endpoint is sent events.")
class WebhookEndpointState(Enum):
    ACTIVE = "active"
    PAUSED = "paused"
    DISABLED = "disabled"  # by the delivery worker after a long run of failures; resume re-enables


@strawberry.type(description="One attempt to deliver a message (kept 7 days).")
class WebhookAttempt:
    at: datetime
    webhook_id: str = strawberry.field(description="The message's webhook-id header.")
    type: str
    status: str = strawberry.field(description="succeeded, failed, or blocked (address refused: no request).")
    status_code: int | None
    latency_ms: float
    error: str | None

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> WebhookAttempt:
        return cls(
            at=_utc(doc["at"]) or doc["at"],
            webhook_id=doc["msg_id"],
            type=doc["type"],
            status=doc["status"],
            status_code=doc.get("status_code"),
            latency_ms=float(doc.get("latency_ms") or 0.0),
            error=doc.get("error"),
        )


@strawberry.type(description="A message for one endpoint and its delivery state (kept 30 days).")
class WebhookDelivery:
    id: strawberry.ID
    webhook_id: str = strawberry.field(description="The webhook-id header: the same on every attempt and replay.")
    type: str
    status: str = strawberry.field(description="pending, delivered (acknowledged with a 2xx) or failed.")
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    last_status_code: int | None
    last_error: str | None

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> WebhookDelivery:
        return cls(
            id=strawberry.ID(doc["delivery_id"]),
            webhook_id=doc["msg_id"],
            type=doc["type"],
            status=doc["status"],
            attempts=int(doc.get("attempts") or 0),
            created_at=_utc(doc["created_at"]) or doc["created_at"],
            next_attempt_at=_utc(doc.get("next_at")) if doc["status"] == "pending" else None,
            delivered_at=_utc(doc.get("delivered_at")),
            last_status_code=doc.get("last_status_code"),
            last_error=doc.get("last_error"),
        )


@strawberry.type(description="A webhook endpoint: where a tenant's events go. The secret is never shown here.")
class WebhookEndpoint:
    id: strawberry.ID
    tenant_id: strawberry.ID
    url: str
    description: str
    events: list[WebhookEventType]
    min_score: float | None = strawberry.field(description="coin.listed/delisted: only scores at or above this.")
    threshold: float | None = strawberry.field(description="coin.score_crossed: the line.")
    direction: CrossingDirection
    state: WebhookEndpointState
    created_at: datetime
    updated_at: datetime
    consecutive_failures: int
    disabled_at: datetime | None
    disabled_reason: str | None
    previous_secret_until: datetime | None = strawberry.field(
        description="After a rotation: until when the previous secret also signs."
    )

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> WebhookEndpoint:
        filters = doc.get("filters") or {}
        until = _utc(doc.get("previous_until"))
        return cls(
            id=strawberry.ID(doc["endpoint_id"]),
            tenant_id=strawberry.ID(doc["tenant_id"]),
            url=doc["url"],
            description=doc.get("description") or "",
            events=[WebhookEventType(e) for e in doc["events"]],
            min_score=filters.get("min_score"),
            threshold=filters.get("threshold"),
            direction=CrossingDirection(filters.get("direction") or "both"),
            state=WebhookEndpointState(doc["state"]),
            created_at=_utc(doc["created_at"]) or doc["created_at"],
            updated_at=_utc(doc["updated_at"]) or doc["updated_at"],
            consecutive_failures=int(doc.get("consecutive_failures") or 0),
            disabled_at=_utc(doc.get("disabled_at")),
            disabled_reason=doc.get("disabled_reason"),
            previous_secret_until=until if until is not None and until > datetime.now(UTC) else None,
        )

    @strawberry.field(description="The latest deliveries, newest first.")
    async def deliveries(
        self, info: Info[Context, Any], first: Annotated[int, strawberry.argument(description="1 to 100.")] = 20
    ) -> list[WebhookDelivery]:
        principal, _ = _context(info)
        docs = await _run(_service(info).deliveries(principal, str(self.id), first))
        return [WebhookDelivery.from_doc(d) for d in docs]

    @strawberry.field(description="The latest attempts (status, latency, response code), newest first.")
    async def attempts(
        self, info: Info[Context, Any], first: Annotated[int, strawberry.argument(description="1 to 100.")] = 20
    ) -> list[WebhookAttempt]:
        principal, _ = _context(info)
        docs = await _run(_service(info).attempts(principal, str(self.id), first))
        return [WebhookAttempt.from_doc(d) for d in docs]


@strawberry.type(description="An endpoint with its signing secret: shown this once.")
class WebhookEndpointWithSecret:
    endpoint: WebhookEndpoint
    secret: str = strawberry.field(description="whsec_…: verify the webhook-signature header with it.")


@strawberry.type(description="The outcome of a signed webhook.test ping.")
class WebhookTestResult:
    ok: bool
    status: str
    status_code: int | None
    latency_ms: float
    error: str | None
    delivery: WebhookDelivery


@strawberry.input(description="A new webhook endpoint.")
class CreateWebhookEndpointInput:
    url: str = strawberry.field(description="https:// URL, at most 2048 characters.")
    events: list[WebhookEventType]
    description: str | None = None
    min_score: float | None = None
    threshold: float | None = strawberry.field(default=None, description="Required with COIN_SCORE_CROSSED.")
    direction: CrossingDirection | None = None
    tenant_id: strawberry.ID | None = strawberry.field(default=None, description="admin only: another tenant.")


@strawberry.input(description="Changes to a webhook endpoint (omitted fields stay).")
class UpdateWebhookEndpointInput:
    url: str | None = None
    events: list[WebhookEventType] | None = None
    description: str | None = None
    min_score: float | None = None
    clear_min_score: bool = False
    threshold: float | None = None
    direction: CrossingDirection | None = None


@strawberry.type
class WebhookQuery:
    @strawberry.field(
        permission_classes=[WebhooksManage], description="A tenant's webhook endpoints (the caller's own by default)."
    )
    async def webhook_endpoints(
        self, info: Info[Context, Any], tenant_id: strawberry.ID | None = None
    ) -> list[WebhookEndpoint]:
        principal, _ = _context(info)
        docs = await _run(_service(info).list_endpoints(principal, None if tenant_id is None else str(tenant_id)))
        return [WebhookEndpoint.from_doc(d) for d in docs]

    @strawberry.field(permission_classes=[WebhooksManage], description="One webhook endpoint.")
    async def webhook_endpoint(self, info: Info[Context, Any], id: strawberry.ID) -> WebhookEndpoint:
        principal, _ = _context(info)
        return WebhookEndpoint.from_doc(await _run(_service(info).get(principal, str(id))))


@strawberry.type
class WebhookMutation:
    @strawberry.mutation(
        permission_classes=[WebhooksManage], description="Create an endpoint; its secret is shown once."
    )
    async def create_webhook_endpoint(
        self, info: Info[Context, Any], input: CreateWebhookEndpointInput
    ) -> WebhookEndpointWithSecret:
        principal, _ = _context(info)
        created = await _run(
            _service(info).create(
                principal,
                url=input.url,
                events=[e.value for e in input.events],
                tenant_id=None if input.tenant_id is None else str(input.tenant_id),
                description=input.description,
                min_score=input.min_score,
                threshold=input.threshold,
                direction=None if input.direction is None else input.direction.value,
            )
        )
        return WebhookEndpointWithSecret(endpoint=WebhookEndpoint.from_doc(created.endpoint), secret=created.secret)

    @strawberry.mutation(permission_classes=[WebhooksManage], description="Change an endpoint.")
    async def update_webhook_endpoint(
        self, info: Info[Context, Any], id: strawberry.ID, input: UpdateWebhookEndpointInput
    ) -> WebhookEndpoint:
        principal, _ = _context(info)
        doc = await _run(
            _service(info).update(
                principal,
                str(id),
                url=input.url,
                events=None if input.events is None else [e.value for e in input.events],
                description=input.description,
                min_score=input.min_score,
                clear_min_score=input.clear_min_score,
                threshold=input.threshold,
                direction=None if input.direction is None else input.direction.value,
            )
        )
        return WebhookEndpoint.from_doc(doc)

    @strawberry.mutation(permission_classes=[WebhooksManage], description="Pause an endpoint: no events until resumed.")
    async def pause_webhook_endpoint(self, info: Info[Context, Any], id: strawberry.ID) -> WebhookEndpoint:
        principal, _ = _context(info)
        return WebhookEndpoint.from_doc(await _run(_service(info).set_paused(principal, str(id), True)))

    @strawberry.mutation(
        permission_classes=[WebhooksManage], description="Resume a paused (or re-enable a disabled) endpoint."
    )
    async def resume_webhook_endpoint(self, info: Info[Context, Any], id: strawberry.ID) -> WebhookEndpoint:
        principal, _ = _context(info)
        return WebhookEndpoint.from_doc(await _run(_service(info).set_paused(principal, str(id), False)))

    @strawberry.mutation(permission_classes=[WebhooksManage], description="Delete an endpoint.")
    async def delete_webhook_endpoint(self, info: Info[Context, Any], id: strawberry.ID) -> bool:
        principal, _ = _context(info)
        return await _run(_service(info).delete(principal, str(id)))

    @strawberry.mutation(
        permission_classes=[WebhooksManage],
        description="A new secret, shown once; the previous one keeps signing beside it for the overlap.",
    )
    async def rotate_webhook_secret(self, info: Info[Context, Any], id: strawberry.ID) -> WebhookEndpointWithSecret:
        principal, _ = _context(info)
        rotated = await _run(_service(info).rotate_secret(principal, str(id)))
        return WebhookEndpointWithSecret(endpoint=WebhookEndpoint.from_doc(rotated.endpoint), secret=rotated.secret)

    @strawberry.mutation(
        permission_classes=[WebhooksManage],
        description="Send the endpoint's stored messages created since then again (same webhook-id); returns how many.",
    )
    async def replay_webhook_deliveries(
        self, info: Info[Context, Any], endpoint_id: strawberry.ID, since: datetime
    ) -> int:
        principal, _ = _context(info)
        return await _run(_service(info).replay(principal, str(endpoint_id), since))

    @strawberry.mutation(permission_classes=[WebhooksManage], description="Send a signed webhook.test ping now.")
    async def send_test_webhook(self, info: Info[Context, Any], endpoint_id: strawberry.ID) -> WebhookTestResult:
        principal, _ = _context(info)
        delivery, outcome = await _run(_service(info).send_test(principal, str(endpoint_id)))
        return WebhookTestResult(
            ok=outcome.ok,
            status=outcome.status,
            status_code=outcome.status_code,
            latency_ms=outcome.latency_ms,
            error=outcome.error,
            delivery=WebhookDelivery.from_doc(delivery),
        )
