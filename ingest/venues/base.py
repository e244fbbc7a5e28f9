"""The connector base class and its two transports: ccxt (async, pinned) and plain httpx.

A connector turns one venue's public REST answers into :class:`Quote` rows. It validates every
payload with pydantic: a response whose envelope is wrong fails the venue (``MalformedResponse``);
a single bad row is dropped and counted in ``stats.rejected``. Transport errors, timeouts, 429 and
5xx are retried with jitter; anything else fails the venue for this cycle.
"""

from __future__ import annotations

import abc
import asyncio
import random
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, TypeVar

import ccxt.async_support as ccxt_async
import httpx
import orjson
from ccxt.base import errors as ccxt_errors
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from ingest.errors import MalformedResponse, VenueError
from ingest.resilience import HostLimiter, RetryPolicy, Timeouts, with_retries

__all__ = [
    "Bar",
    "CcxtFetch",
    "CcxtVenue",
    "HttpVenue",
    "Num",
    "Quote",
    "Raw",
    "Venue",
    "VenueStats",
    "taker_flow",
]


def _blank_to_none(value: Any) -> Any:
    return None if value == "" else value


#: An optional number that venues send as a string, a number, ``""`` or ``null``.
Num = Annotated[float | None, BeforeValidator(_blank_to_none)]

M = TypeVar("M", bound=BaseModel)

#: ``async fetch(url, method, headers, body)``: ccxt's transport hook, replaced in tests.
CcxtFetch = Callable[[str, str, Any, Any], Awaitable[Any]]


class Raw(BaseModel):
    """Base of raw payload models: unknown fields ignored, numeric strings coerced."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class CodedEnvelope(Raw):
    """A venue's ``{code, message, data}`` wrapper; each venue says which answer is a success."""

    data: Any = None

    def refusal(self) -> str | None:
        """``None`` when the venue answered with data, else the venue's reason, for the outcome."""
        raise NotImplementedError


@dataclass(slots=True)
class Quote:
    """One linear perpetual as one venue reports it, normalized to USD and per-interval rates."""

    venue: str
    symbol: str
    base: str
    funding_rate: float | None
    funding_interval_hours: float | None
    open_interest_usd: float | None = None
    mark_price: float | None = None
    index_price: float | None = None
    price: float | None = None
    taker_buy_usd: float | None = None
    taker_sell_usd: float | None = None
    long_short_ratio: float | None = None
    quote: str = "USDT"
    #: coins per contract unit (1000 for ``1000PEPE``); prices above are per contract unit
    multiplier: int = 1

    @property
    def funding_rate_per_hour(self) -> float | None:
        if self.funding_rate is None or not self.funding_interval_hours:
            return None
        return self.funding_rate / self.funding_interval_hours

    @property
    def unit_price(self) -> float | None:
        """The venue's price of one contract unit (mark, else last, else index)."""
        return self.mark_price or self.price or self.index_price

    @property
    def coin_price(self) -> float | None:
        """The price of one coin."""
        price = self.unit_price
        return None if price is None else price / self.multiplier


@dataclass(frozen=True, slots=True)
class Bar:
    """One past hour of one symbol from a venue's history endpoints (``None``: not provided).

    ``price`` is the hour's closing trade price per contract unit (divided by the multiplier
    downstream, like :attr:`Quote.price`); the other fields are USD.
    """

    at_ms: int
    price: float | None = None
    open_interest_usd: float | None = None
    taker_buy_usd: float | None = None
    taker_sell_usd: float | None = None


def taker_flow(trades: Iterable[tuple[int, float, float, bool]], since_ms: int) -> tuple[float, float] | None:
    """Taker buy and sell notional (USD) of ``(time ms, price, size in coins, taker is buyer)``
    trades at or after ``since_ms``; ``None`` when the trades do not reach back to ``since_ms``
    (a busy market's last page covers only seconds, and a partial window is not the window)."""
    rows = list(trades)
    if not rows or min(t for t, *_ in rows) > since_ms:
        return None
    buy = sum(p * q for t, p, q, is_buy in rows if t >= since_ms and is_buy)
    sell = sum(p * q for t, p, q, is_buy in rows if t >= since_ms and not is_buy)
    return buy, sell


@dataclass(slots=True)
class VenueStats:
    requests: int = 0
    rejected: int = 0


def usd(*factors: float | None) -> float | None:
    """The product of ``factors``, or ``None`` when any is missing (never a guessed value)."""
    result = 1.0
    for factor in factors:
        if factor is None:
            return None
        result *= factor
    return result


def interval_from_ms(start_ms: float | None, end_ms: float | None) -> float | None:
    """A funding interval in hours from two consecutive settlement times, if plausible."""
    if start_ms is None or end_ms is None:
        return None
    hours = (end_ms - start_ms) / 3_600_000
    return hours if hours in (1.0, 2.0, 4.0, 8.0) else None


class Venue(abc.ABC):
    """One venue. Subclasses set the class attributes and implement :meth:`scan`."""

    #: key of :data:`ingest.snapshot.VENUES`
    id: ClassVar[str]
    #: the funding interval used when the venue's answer does not state one (documented per venue)
    default_interval_hours: ClassVar[float] = 8.0
    #: seconds between two requests to this venue's host
    min_request_interval: ClassVar[float] = 0.1

    def __init__(
        self,
        *,
        timeouts: Timeouts | None = None,
        retry: RetryPolicy | None = None,
        rng: random.Random | None = None,
        throttle: bool = True,
    ) -> None:
        self.timeouts = timeouts or Timeouts()
        self.retry = retry or RetryPolicy()
        self.stats = VenueStats()
        self.throttle = throttle
        self._rng = rng or random.Random()
        self._limiter = HostLimiter(self.min_request_interval if throttle else 0.0)

    @abc.abstractmethod
    async def scan(self) -> list[Quote]:
        """Funding, mark/index, OI and last price for every linear perpetual, in bulk."""

    async def enrich(self, quotes: Sequence[Quote]) -> None:  # noqa: B027 - optional hook
        """Fill per-symbol fields (OI, taker flow, long/short) for candidate quotes, in place."""

    async def funding_history(self, quote: Quote, since_ms: int) -> list[tuple[int, float]]:
        """Funding prints ``(settlement time ms, rate per interval)`` since ``since_ms``."""
        return []

    async def price_history(self, quote: Quote, since_ms: int) -> list[Bar]:
        """Hourly closes (and taker flow where the kline has it) since ``since_ms``."""
        return []

    async def oi_history(self, quote: Quote, since_ms: int) -> list[Bar]:
        """Hourly open interest in USD since ``since_ms``."""
        return []

    @classmethod
    def provides(cls, history: str) -> bool:
        """Whether this venue implements ``funding_history``, ``price_history`` or ``oi_history``."""
        return getattr(cls, history) is not getattr(Venue, history)

    @abc.abstractmethod
    async def _send(self, path: str, params: dict[str, Any]) -> Any:
        """One raw request, already parsed from JSON. Raises on transport or HTTP errors."""

    @staticmethod
    @abc.abstractmethod
    def _retryable(exc: BaseException) -> bool: ...

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    async def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """A raw GET with rate limit, per-request timeout and retries; the parsed JSON body."""

        async def once() -> Any:
            await self._limiter.wait()
            self.stats.requests += 1
            async with asyncio.timeout(self.timeouts.request):
                return await self._send(path, dict(params or {}))

        def retryable(exc: BaseException) -> bool:
            return isinstance(exc, TimeoutError) or self._retryable(exc)

        try:
            body = await with_retries(once, self.retry, retryable, rng=self._rng)
        except TimeoutError as exc:
            raise VenueError(self.id, f"timed out after {self.timeouts.request:g} s ({path})") from exc
        except VenueError:
            raise
        except Exception as exc:
            raise VenueError(self.id, f"{type(exc).__name__}: {_short(exc)} ({path})") from exc
        if isinstance(body, str | bytes):
            raise MalformedResponse(self.id, f"not JSON ({_short(body)}) ({path})")
        return body

    async def unwrap(self, model: type[CodedEnvelope], path: str, params: dict[str, Any] | None = None) -> Any:
        """GET, validate the venue's envelope, and return its ``data``; a refusal fails the venue."""
        env = self.envelope(model, await self.get(path, params))
        refusal = env.refusal()
        if refusal is not None:
            raise VenueError(self.id, refusal)
        return env.data

    def envelope(self, model: type[M], payload: Any) -> M:
        """Validate a response envelope; a mismatch fails the venue."""
        try:
            return model.model_validate(payload)
        except ValidationError as exc:
            self.stats.rejected += 1
            raise MalformedResponse(self.id, f"unexpected {model.__name__}: {_first(exc)}") from exc

    def rows(self, model: type[M], items: Any) -> list[M]:
        """Validate a list of rows; bad rows are dropped and counted, never fatal."""
        if not isinstance(items, list):
            self.stats.rejected += 1
            raise MalformedResponse(self.id, f"expected a list of {model.__name__}")
        good: list[M] = []
        for item in items:
            try:
                good.append(model.model_validate(item))
            except ValidationError:
                self.stats.rejected += 1
        return good


def _short(value: object, limit: int = 120) -> str:
    text = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _first(exc: ValidationError) -> str:
    err = exc.errors()[0]
    return f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}"


class CcxtVenue(Venue):
    """A venue reached through ccxt's implicit (raw) endpoints.

    Raw endpoints cost one bulk request where ccxt's unified calls would first load every market
    (several requests per venue per process); rows are then validated here with pydantic.
    ccxt still provides the URLs, the per-exchange throttle and its error classes.
    """

    exchange_id: ClassVar[str]

    def __init__(self, *, fetch: CcxtFetch | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        factory = getattr(ccxt_async, self.exchange_id)
        self.exchange = factory({"enableRateLimit": self.throttle, "timeout": int(self.timeouts.request * 1000)})
        if fetch is not None:
            self.exchange.fetch = fetch

    async def _send(self, path: str, params: dict[str, Any]) -> Any:
        if "/" in path:  # an endpoint ccxt does not declare: (api, path) through ccxt.request
            api, _, rest = path.partition(":")
            return await self.exchange.request(rest, api.split("."), "GET", params)
        return await getattr(self.exchange, path)(params)

    async def post(self, method: str, body: dict[str, Any]) -> Any:
        return await self.get(method, body)

    @staticmethod
    def _retryable(exc: BaseException) -> bool:
        return isinstance(exc, ccxt_errors.NetworkError)

    async def aclose(self) -> None:
        await self.exchange.close()


class HttpStatusError(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {_short(body, 80)}")
        self.status = status


class HttpVenue(Venue):
    """A venue reached with httpx directly (BitMEX and CoinEx are no longer in ccxt 4.5.90)."""

    base_url: ClassVar[str]

    def __init__(self, *, transport: httpx.AsyncBaseTransport | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        timeout = httpx.Timeout(self.timeouts.read, connect=self.timeouts.connect)
        self.client = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=timeout,
            transport=transport,
            headers={"User-Agent": "insider-selling/0.1", "Accept": "application/json"},
        )

    async def _send(self, path: str, params: dict[str, Any]) -> Any:
        response = await self.client.get(path, params=params)
        if response.status_code >= 400:
            raise HttpStatusError(response.status_code, response.text)
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            return response.text

    @staticmethod
    def _retryable(exc: BaseException) -> bool:
        if isinstance(exc, HttpStatusError):
            return exc.status == 429 or exc.status >= 500
        return isinstance(exc, httpx.TransportError)

    async def aclose(self) -> None:
        await self.client.aclose()
