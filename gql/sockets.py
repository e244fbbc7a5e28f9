"""graphql-transport-ws on ``/graphql``: every operation on a socket passes the request pipeline.

- ``connection_init`` authenticates the key (from the payload's ``Authorization`` or the upgrade
  request's header); a refused key closes the socket with 4403.
- Each ``subscribe`` message (a query, a mutation or a subscription) re-authenticates the key, then
  is admitted by :meth:`gql.pipeline.Pipeline.admit` exactly like an HTTP request: size, tokens,
  scope, depth, aliases, cost, the per-minute limits and the monthly quota. A refusal is an
  ``error`` message for that operation id; a key that no longer works closes the socket (4403).
- :class:`Sockets` tracks the open sockets by key id. A key change heard on the
  :class:`tenants.revocation.KeyChangeBus` (from this worker, or from every worker through Redis)
  re-reads the key and closes its sockets when it is revoked or past its expiry or grace end; a
  timer closes them at the expiry itself. While the bus cannot hear Redis, the keys of open
  sockets are re-read every :data:`SWEEP_SECONDS`.
- A text message longer than :data:`MAX_FRAME` closes the socket (1009); uvicorn's ``ws_max_size``
  refuses larger frames before they are read. A message nested deeper than the JSON bound is an
  ``error`` for its operation, or a 4400 close.
- Abuse bounds (issue 17): ``connection_init`` is charged one request like any other; a key may
  hold at most its plan's open sockets (per key and per tenant, :func:`tenants.plans.socket_caps`,
  counted by each process); a refusal there closes the socket with 1013 (try again later). Pings
  and pongs share a bucket of :data:`PING_BURST` messages refilled at :data:`PINGS_PER_SECOND`;
  a flood closes the socket with 1008. When a key is refused for its limits (429), its sockets are
  closed (1013) after the grace period (``INSIDER_WS_OVER_LIMIT_GRACE``) unless one of its
  operations is admitted meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from json import JSONDecodeError
from typing import TYPE_CHECKING, Any, cast

import orjson
from graphql import OperationType
from starlette.websockets import WebSocketDisconnect, WebSocketState
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.http.exceptions import NonJsonMessageReceived, NonTextMessageReceived
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    ErrorMessage,
    SubscribeMessage,
)

from gql.context import Context
from gql.errors import ApiError
from gql.limits import MAX_DOCUMENT, MAX_JSON_DEPTH, json_too_deep
from tenants.auth import key_is_usable
from tenants.plans import socket_caps
from tenants.principal import Principal

if TYPE_CHECKING:
    from gql.services import Services

__all__ = [
    "MAX_FRAME",
    "PINGS_PER_SECOND",
    "PING_BURST",
    "SWEEP_SECONDS",
    "ConnectionTimeouts",
    "SocketAdapter",
    "Sockets",
    "TransportWSHandler",
]

log = logging.getLogger("insider_selling.gql.sockets")

#: Longest websocket text message: a document of MAX_DOCUMENT bytes plus its JSON envelope.
MAX_FRAME = MAX_DOCUMENT + 8 * 1024
SWEEP_SECONDS = 0.5
#: Close code for a key that stopped working (revoked, expired, grace over).
CLOSE_KEY_UNUSABLE = 4403
#: Close code for a key over its limits (requests, quota, open sockets): RFC 6455's "try again later".
CLOSE_OVER_LIMIT = 1013
#: Close code for a ping flood: RFC 6455's "policy violation".
CLOSE_FLOOD = 1008
#: Error codes of a push refused for the key's limits.
_LIMIT_CODES = frozenset({"rate_limited", "quota_exceeded", "budget_exceeded"})
#: Pings and pongs a socket may send at once, and how fast that allowance refills.
PING_BURST = 10
PINGS_PER_SECOND = 1.0


@dataclass(frozen=True, slots=True)
class ConnectionTimeouts:
    """Seconds a websocket may stay open without sending ``connection_init``, and seconds the
    sockets of a key refused for its limits stay open before they are closed."""

    connection_init: float = 10.0
    over_limit_grace: float = 10.0


class SocketAdapter(ASGIWebSocketAdapter):
    """Strawberry's ASGI adapter with a message size limit."""

    async def iter_json(self, *, ignore_parsing_errors: bool = False) -> AsyncGenerator[object, None]:
        try:
            while self.ws.application_state != WebSocketState.DISCONNECTED:
                try:
                    text = await self.ws.receive_text()
                    if len(text) > MAX_FRAME:
                        await self.ws.close(code=1009, reason=f"messages are limited to {MAX_FRAME} bytes")
                        return
                    message = self.view.decode_json(text)
                    if json_too_deep(message, MAX_JSON_DEPTH + 2):  # {"payload": {"variables": ...}}
                        refused = await self._refuse_deep(message)
                        if refused:
                            return
                        continue
                    yield message
                except JSONDecodeError as e:
                    if not ignore_parsing_errors:
                        raise NonJsonMessageReceived from e
        except KeyError as e:
            raise NonTextMessageReceived from e
        except (WebSocketDisconnect, RuntimeError):  # closed by the client, or by us meanwhile
            pass

    async def _refuse_deep(self, message: object) -> bool:
        """A message nested too deep: an ``error`` for its operation when it is a ``subscribe``
        (the socket serves on), else a 4400 close naming the limit. Returns True when closed."""
        if isinstance(message, dict) and message.get("type") == "subscribe" and isinstance(message.get("id"), str):
            error = ApiError(
                400,
                "bad_request",
                f"the message nests JSON more than {MAX_JSON_DEPTH} levels deep "
                f"(the maximum is {MAX_JSON_DEPTH} levels in variables and extensions)",
            )
            await self.ws.send_text(
                orjson.dumps({"id": message["id"], "type": "error", "payload": [error.graphql()]}).decode()
            )
            return False
        await self.ws.close(code=4400, reason=f"JSON nested more than {MAX_JSON_DEPTH} levels deep")
        return True


class TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """Strawberry's graphql-transport-ws handler with every operation passed through the pipeline."""

    context: Context

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.schema = OperationSchema(self)  # type: ignore[assignment]
        self.closed = False
        self._pings = float(PING_BURST)
        self._pinged = time.monotonic()

    async def _flooded(self) -> bool:
        """Take one ping or pong from the socket's allowance; close the socket when none is left."""
        now = time.monotonic()
        self._pings = min(float(PING_BURST), self._pings + (now - self._pinged) * PINGS_PER_SECOND)
        self._pinged = now
        if self._pings < 1.0:
            await self.close(CLOSE_FLOOD, f"more than {PING_BURST} pings at once or {PINGS_PER_SECOND:g} per second")
            return True
        self._pings -= 1.0
        return False

    async def handle_ping(self, message: Any) -> None:
        if not await self._flooded():
            await super().handle_ping(message)

    async def handle_pong(self, message: Any) -> None:
        if not await self._flooded():
            await super().handle_pong(message)

    @property
    def _sockets(self) -> Sockets:
        return cast(Sockets, self.view.sockets)  # type: ignore[attr-defined]

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        if self.connection_init_received or self.connection_timed_out:
            await super().handle_connection_init(message)
            return
        payload = message.get("payload") or {}
        if not isinstance(payload, dict):
            await super().handle_connection_init(message)
            return
        header = payload.get("Authorization") or payload.get("authorization")
        if not isinstance(header, str):
            header = self.context.authorization
        self.context.authorization = header
        try:
            principal = self.context.principal = await self.view.gate.authenticate(  # type: ignore[attr-defined]
                self.context.services, header, self.context.client, "WS"
            )
        except ApiError:
            await self._refuse_init(CLOSE_KEY_UNUSABLE, "Forbidden")
            return
        # the socket is counted before anything is awaited, so concurrent inits cannot pass the cap
        refusal = self._sockets.reserve(self, principal)
        if refusal is not None:
            await self._refuse_init(CLOSE_OVER_LIMIT, refusal)
            return
        try:  # connection_init is a request: it is charged like one
            await self.view.pipeline.charge(self.context.services, principal, 1, {})  # type: ignore[attr-defined]
        except ApiError as error:
            self._sockets.unregister(self)
            if error.status == 429:
                self._sockets.over_limit(principal.key_id)
            await self._refuse_init(CLOSE_OVER_LIMIT, error.message[:120])
            return
        await super().handle_connection_init(message)
        if self.connection_acknowledged:
            await self._sockets.register(self)
        else:
            self._sockets.unregister(self)

    async def _refuse_init(self, code: int, reason: str) -> None:
        if self.connection_init_timeout_task:
            self.connection_init_timeout_task.cancel()
        self.connection_init_received = True
        await self.close(code, reason)

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        if not self.connection_acknowledged or message["id"] in self.operations:
            await super().handle_subscribe(message)
            return
        op_id = message["id"]
        if (
            self.max_subscriptions_per_connection is not None
            and len(self.operations) >= self.max_subscriptions_per_connection
        ):
            await self._refuse(
                op_id, ApiError(429, "too_many_operations", "too many operations in flight on this socket")
            )
            return
        payload = message.get("payload")
        if not isinstance(payload, dict):
            await self.close(4400, "Invalid subscribe payload")
            return
        services = self.context.services
        try:
            principal = await self.view.gate.authenticate(  # type: ignore[attr-defined]
                services, self.context.authorization, self.context.client, "WS"
            )
        except ApiError as error:
            if error.status == 401:
                await self.close(CLOSE_KEY_UNUSABLE, "the API key was revoked or has expired")
            else:
                await self._refuse(op_id, error)
            return
        self.context.principal = principal
        try:
            admission = await self.view.pipeline.admit(  # type: ignore[attr-defined]
                services,
                principal,
                payload.get("query"),
                payload.get("variables"),
                payload.get("operationName"),
                "WS",
                {},
            )
        except ApiError as error:
            if error.status == 429:
                self._sockets.over_limit(principal.key_id)
            await self._refuse(op_id, error)
            return
        self._sockets.admitted(principal.key_id)
        context = Context.build(
            services,
            principal,
            request=self.context.request,
            response=self.context.response,
            client=self.context.client,
            authorization=self.context.authorization,
            connection_params=self.context.connection_params,
            admission=admission,
        )
        operation = Operation(self, op_id, admission.document.text, admission.variables, admission.name)
        # Strawberry's own run_operation runs the operation; its task (a copy of this context)
        # finds the operation's own context (its admission) in OPERATION_CONTEXT
        token = OPERATION_CONTEXT.set(context)
        try:
            operation.task = asyncio.create_task(self.run_operation(operation))
        finally:
            OPERATION_CONTEXT.reset(token)
        operation.task.add_done_callback(_retrieve)
        self.operations[op_id] = operation

    async def _refuse(self, op_id: str, error: ApiError) -> None:
        message: ErrorMessage = {"id": op_id, "type": "error", "payload": [cast(Any, error.graphql())]}
        await self.send_message(message)

    async def close(self, code: int, reason: str) -> None:
        """Cancel every operation, then close the socket (at most once)."""
        if self.closed:
            return
        self.closed = True
        for op_id in list(self.operations):
            await self.cleanup_operation(op_id)
        with contextlib.suppress(Exception):
            await self.websocket.close(code=code, reason=reason)

    async def shutdown(self) -> None:
        self._sockets.unregister(self)
        await super().shutdown()


#: The context of the websocket operation a task runs (set when its task is created).
OPERATION_CONTEXT: ContextVar[Context | None] = ContextVar("OPERATION_CONTEXT", default=None)


def _retrieve(task: asyncio.Task[None]) -> None:
    """Retrieve an operation task's exception (Strawberry's run_operation logs it through
    ``handle_task_exception`` and re-raises it), so that asyncio does not report it again."""
    if not task.cancelled():
        task.exception()


class OperationSchema:
    """The schema a socket's operations are streamed from: Strawberry's ``run_operation`` calls
    ``self.schema.stream(...)`` with the socket's context; this one runs the operation with its own
    context (:data:`OPERATION_CONTEXT`, its admission), computes a query's or mutation's first
    result in its turn of the heavy gate, and watches the results for refusals for the key's
    limits. Every other attribute is the schema's."""

    def __init__(self, handler: TransportWSHandler) -> None:
        self.handler = handler
        self.schema = handler.view.schema

    def __getattr__(self, name: str) -> Any:
        return getattr(self.schema, name)

    async def stream(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
    ) -> AsyncGenerator[Any, None]:
        context = OPERATION_CONTEXT.get() or context_value
        admission = getattr(context, "admission", None)
        # a query or mutation takes its turn like over HTTP; a subscription's pushes are charged one by one
        heavy = (
            0
            if admission is None or admission.operation.operation == OperationType.SUBSCRIPTION
            else admission.requested
        )
        source = await self.schema.stream(
            query,
            variable_values=variable_values,
            context_value=context,
            root_value=root_value,
            operation_name=operation_name,
        )
        first: Any = None
        if heavy:  # computed in its turn; sent after it (a slow reader holds no turn)
            try:
                async with self.handler.view.heavy.turn(heavy):  # type: ignore[attr-defined]
                    first = await anext(aiter(source), None)
            except BaseException:
                await source.aclose()
                raise
        return self._results(first, source, getattr(context, "principal", None))

    async def _results(self, first: Any, source: Any, principal: Principal | None) -> AsyncGenerator[Any, None]:
        """``first`` (when there is one), then the rest of ``source``; one that ends a
        subscription for the key's limits (a push over the budget or the quota) starts the key's
        grace period like a refused operation."""
        sockets = cast(Sockets, self.handler.view.sockets)  # type: ignore[attr-defined]
        try:
            if first is not None:
                yield self._watch(first, principal, sockets)
            async for result in source:
                yield self._watch(result, principal, sockets)
        finally:
            await source.aclose()

    @staticmethod
    def _watch(result: Any, principal: Principal | None, sockets: Sockets) -> Any:
        errors = getattr(result, "errors", None) or ()
        if principal is not None and any(
            (getattr(e, "extensions", None) or {}).get("code") in _LIMIT_CODES for e in errors
        ):
            sockets.over_limit(principal.key_id)
        return result


def _not_after(doc: dict[str, Any]) -> float | None:
    ends = []
    for name in ("expires_at", "grace_until"):
        at = doc.get(name)
        if isinstance(at, datetime):
            ends.append((at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp())
    return min(ends) if ends else None


class Sockets:
    """The open sockets of one app, by key id, closed when their key stops working."""

    def __init__(self, sweep_seconds: float = SWEEP_SECONDS, over_limit_grace: float = 10.0) -> None:
        self.sweep_seconds = sweep_seconds
        self.over_limit_grace = over_limit_grace
        self._by_key: dict[str, set[TransportWSHandler]] = {}
        self._by_tenant: dict[str, set[TransportWSHandler]] = {}
        # key id -> (loop time of its last refusal for its limits, of its last admission), and the
        # timer that closes its sockets when the grace period after a refusal ends
        self._refused: dict[str, float] = {}
        self._admitted: dict[str, float] = {}
        self._grace: dict[str, asyncio.TimerHandle] = {}
        self._timers: dict[TransportWSHandler, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._services: Services | None = None
        self._sweeper: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return sum(len(handlers) for handlers in self._by_key.values())

    def reserve(self, handler: TransportWSHandler, principal: Principal) -> str | None:
        """Count ``handler`` as an open socket of its key and tenant, or say why it may not open
        (its plan's caps, :func:`tenants.plans.socket_caps`)."""
        per_key, per_tenant = socket_caps(principal.plan)
        by_key = self._by_key.get(principal.key_id, set())
        by_tenant = self._by_tenant.get(principal.tenant_id, set())
        if len(by_key - {handler}) >= per_key:
            return f"this key has {per_key} sockets open, the most its plan allows"
        if len(by_tenant - {handler}) >= per_tenant:
            return f"this tenant has {per_tenant} sockets open, the most its plan allows"
        self._by_key.setdefault(principal.key_id, set()).add(handler)
        self._by_tenant.setdefault(principal.tenant_id, set()).add(handler)
        return None

    def over_limit(self, key_id: str) -> None:
        """``key_id`` was refused for its limits: close its sockets when the grace period ends,
        unless one of its operations is admitted meanwhile."""
        loop = asyncio.get_running_loop()
        self._refused[key_id] = loop.time()
        if key_id not in self._grace and key_id in self._by_key:
            self._grace[key_id] = loop.call_later(self.over_limit_grace, self._grace_over, key_id)

    def admitted(self, key_id: str) -> None:
        if key_id in self._refused:
            self._admitted[key_id] = asyncio.get_running_loop().time()

    def _grace_over(self, key_id: str) -> None:
        self._grace.pop(key_id, None)
        refused = self._refused.pop(key_id, 0.0)
        if self._admitted.pop(key_id, float("-inf")) > refused:
            return  # the key is within its limits again
        for handler in list(self._by_key.get(key_id, ())):
            self.unregister(handler)
            self._spawn(handler.close(CLOSE_OVER_LIMIT, "the API key is over its limits"))

    async def register(self, handler: TransportWSHandler) -> None:
        services = handler.context.services
        principal = handler.context.principal
        if principal is None:
            return
        if self._services is not services:
            self._services = services
            if services.bus is not None:
                services.bus.add_listener(self.key_changed)
        self._by_key.setdefault(principal.key_id, set()).add(handler)
        self._by_tenant.setdefault(principal.tenant_id, set()).add(handler)
        doc = await services.authenticator.repo.get_key(principal.key_id)
        self._apply(principal.key_id, doc)
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.create_task(self._sweep(), name="socket-key-sweep")

    def unregister(self, handler: TransportWSHandler) -> None:
        timer = self._timers.pop(handler, None)
        if timer is not None:
            timer.cancel()
        principal = handler.context.principal
        if principal is not None:
            for index, name in ((self._by_key, principal.key_id), (self._by_tenant, principal.tenant_id)):
                handlers = index.get(name)
                if handlers is not None:
                    handlers.discard(handler)
                    if not handlers:
                        del index[name]
            if principal.key_id not in self._by_key:
                timer = self._grace.pop(principal.key_id, None)
                if timer is not None:
                    timer.cancel()
                self._refused.pop(principal.key_id, None)
                self._admitted.pop(principal.key_id, None)

    def key_changed(self, key_id: str | None) -> None:
        """A :class:`KeyChangeBus` listener: re-check ``key_id``'s sockets (every socket for None)."""
        ids = list(self._by_key) if key_id is None else [key_id] if key_id in self._by_key else []
        if ids:
            self._spawn(self._recheck(ids))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _recheck(self, key_ids: list[str]) -> None:
        if self._services is None:
            return
        repo = self._services.authenticator.repo
        for key_id in key_ids:
            try:
                doc = await repo.get_key(key_id)
            except Exception as exc:  # the store is down: keep the sockets, retry on the next change
                log.warning("re-checking the key of open sockets failed: %s", type(exc).__name__)
                continue
            self._apply(key_id, doc)

    def _apply(self, key_id: str, doc: dict[str, Any] | None) -> None:
        handlers = list(self._by_key.get(key_id, ()))
        if not handlers:
            return
        if doc is None or not key_is_usable(doc, datetime.now(UTC)):
            for handler in handlers:
                self._close(handler)
            return
        not_after = _not_after(doc)
        loop = asyncio.get_running_loop()
        for handler in handlers:
            timer = self._timers.pop(handler, None)
            if timer is not None:
                timer.cancel()
            if not_after is not None:
                delay = max(0.0, not_after - time.time())
                self._timers[handler] = loop.call_later(delay, self._close, handler)

    def _close(self, handler: TransportWSHandler) -> None:
        self.unregister(handler)
        self._spawn(handler.close(CLOSE_KEY_UNUSABLE, "the API key was revoked or has expired"))

    async def _sweep(self) -> None:
        """While the key-change bus cannot hear Redis, confirm the open sockets' keys regularly."""
        while self._by_key:
            await asyncio.sleep(self.sweep_seconds)
            services = self._services
            if services is not None and services.authenticator.revalidate_after is not None:
                await self._recheck(list(self._by_key))
