"""The live source: every venue's public API plus the on-chain providers, one cycle at a time.

A cycle has three phases, each bounded by the cycle deadline:

1. **scan** every venue concurrently (bulk endpoints: funding, mark/index, OI, last price);
2. **enrich** the candidates (coins whose funding is negative on at least ``min_negative_venues``
   venues): per-symbol OI, taker flow, long/short ratio, mark/index where the bulk answer lacks
   them, the real funding interval, funding history (72 h the first time, then only new prints),
   the hourly price path (7 d, from one venue per coin) and OI history (48 h, every venue that
   has it). Past hours go to ``SnapshotBatch.history``, which only fills gaps in the store;
3. **on-chain** context for candidates with a known contract (CoinGecko -> DexScreener, GoPlus).

A venue that fails, times out or answers garbage becomes a ``failed`` :class:`VenueOutcome`;
the cycle itself never raises for it.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from ingest.onchain import CoinGecko, CoinInfo, DexScreener, GoPlus
from ingest.onchain.base import CHAINS, Provider
from ingest.resilience import CircuitBreaker, Timeouts
from ingest.snapshot import VENUES, Coin, MarketSample, OnchainSample
from ingest.source import SnapshotBatch, VenueOutcome
from ingest.symbols import parse_base, reference_prices, resolve
from ingest.venues.base import Quote, Venue

__all__ = ["LiveSource", "Resolved"]

log = logging.getLogger("ingest.live")
T = TypeVar("T")

#: Progress callback of a backfill: ``(done, total)``.
Progress = Callable[[int, int], None]


class Resolved:
    """A quote with its canonical coin id; prices divided by the contract multiplier."""

    __slots__ = ("coin_id", "quote", "symbol")

    def __init__(self, coin_id: str, symbol: str, quote: Quote) -> None:
        self.coin_id, self.symbol, self.quote = coin_id, symbol, quote


class LiveSource:
    name = "live"

    def __init__(
        self,
        venues: Sequence[Venue],
        *,
        coingecko: CoinGecko | None = None,
        dexscreener: DexScreener | None = None,
        goplus: GoPlus | None = None,
        timeouts: Timeouts | None = None,
        max_candidates: int = 40,
        min_negative_venues: int = 2,
        history_hours: int = 72,
        price_hours: int = 24 * 7 + 1,
        oi_hours: int = 48,
        breaker_threshold: int = 3,
        breaker_cooldown: float = 900.0,
    ) -> None:
        unknown = [v.id for v in venues if v.id not in VENUES]
        if unknown:
            raise ValueError(f"unknown venue ids: {unknown}")
        self.venues = list(venues)
        self.coingecko, self.dexscreener, self.goplus = coingecko, dexscreener, goplus
        self.timeouts = timeouts or Timeouts()
        self.max_candidates = max_candidates
        self.min_negative_venues = min_negative_venues
        self.history_hours = history_hours
        self.price_hours = price_hours
        self.oi_hours = oi_hours
        self.breakers = {v.id: CircuitBreaker(breaker_threshold, breaker_cooldown) for v in self.venues}
        #: (venue, symbol) -> ms of the newest funding print already delivered
        self._history_cursor: dict[tuple[str, str], int] = {}
        #: (venue, symbol) whose price path / OI history was already delivered by this process
        self._price_done: set[tuple[str, str]] = set()
        self._oi_done: set[tuple[str, str]] = set()

    @property
    def providers(self) -> list[Provider]:
        return [p for p in (self.coingecko, self.dexscreener, self.goplus) if p is not None]

    # -- one cycle ---------------------------------------------------------------------------

    async def collect(self, at: datetime) -> SnapshotBatch:
        deadline = time.monotonic() + self.timeouts.cycle
        before = {v.id: (v.stats.requests, v.stats.rejected) for v in self.venues + self.providers}
        outcomes, resolved = await self._scan(deadline)
        candidates = self._candidates(resolved)
        history = await self._enrich(candidates, resolved, at, outcomes, deadline)
        coins, onchain = await self._onchain(resolved, candidates, at, outcomes, deadline)
        market = [self._sample(r, at) for rs in resolved.values() for r in rs]
        for outcome in outcomes.values():
            requests, rejected = before.get(outcome.venue, (0, 0))
            source = self._by_id(outcome.venue)
            if source is not None:
                outcome.requests = source.stats.requests - requests
                outcome.rejected = source.stats.rejected - rejected
        return SnapshotBatch(
            at=at,
            coins=coins,
            market=market,
            onchain=onchain,
            outcomes=list(outcomes.values()),
            history=history,
        )

    async def backfill(self, end: datetime, hours: int, *, progress: Progress | None = None) -> SnapshotBatch:
        """Funding prints of the ``hours`` before ``end`` for today's candidates (one sample per
        print, at its settlement hour), with their hourly price path and OI history. Later cycles
        fetch only newer prints. Everything lands in ``history`` (gap-filling samples)."""
        deadline = time.monotonic() + self.timeouts.cycle
        outcomes, resolved = await self._scan(deadline)
        candidates = self._candidates(resolved)
        since = int((end - timedelta(hours=hours)).timestamp() * 1000)
        price_from = self._price_venues(candidates, resolved)
        jobs = [(venue, r) for venue in self.venues for r in resolved.get(venue.id, []) if r.coin_id in candidates]
        done, market = 0, []
        if progress:
            progress(0, len(jobs))
        for venue in self.venues:
            own = [r for v, r in jobs if v is venue]
            if not own:
                continue
            try:
                market += await self._bounded(
                    self._history(venue, own, end, since, price_from), deadline, self.timeouts.venue
                )
            except Exception as exc:
                self._fail(outcomes, venue.id, f"history: {_reason(exc)}", keep_status=True)
            done += len(own)
            if progress:
                progress(done, len(jobs))
        coins = [self._coin(cid, resolved, {}) for cid in sorted(candidates)]
        return SnapshotBatch(at=end, coins=coins, history=market, outcomes=list(outcomes.values()))

    async def aclose(self) -> None:
        await asyncio.gather(*(source.aclose() for source in self.venues + self.providers), return_exceptions=True)

    # -- phases ------------------------------------------------------------------------------

    async def _scan(self, deadline: float) -> tuple[dict[str, VenueOutcome], dict[str, list[Resolved]]]:
        outcomes: dict[str, VenueOutcome] = {}
        quotes: dict[str, list[Quote]] = {}

        async def scan_one(venue: Venue) -> None:
            breaker = self.breakers[venue.id]
            if not breaker.allow():
                outcomes[venue.id] = VenueOutcome(venue.id, "skipped", error="circuit open after repeated failures")
                return
            started = time.monotonic()
            try:
                found = await self._bounded(venue.scan(), deadline, self.timeouts.venue)
                if not found:
                    raise _Empty("0 linear perpetuals in the answer")
            except Exception as exc:
                breaker.record(False)
                latency = (time.monotonic() - started) * 1000
                outcomes[venue.id] = VenueOutcome(venue.id, "failed", latency_ms=latency, error=_reason(exc))
                log.info("venue %s failed: %s", venue.id, _reason(exc))
                return
            breaker.record(True)
            quotes[venue.id] = found
            outcomes[venue.id] = VenueOutcome(venue.id, "ok", latency_ms=(time.monotonic() - started) * 1000)

        await asyncio.gather(*(scan_one(v) for v in self.venues))
        resolved = self._resolve(quotes)
        for venue_id, rs in resolved.items():
            outcomes[venue_id].markets = len(rs)
        ordered = {v.id: outcomes[v.id] for v in self.venues}
        return ordered, resolved

    def _resolve(self, quotes: dict[str, list[Quote]]) -> dict[str, list[Resolved]]:
        """Canonical coin ids across venues, checked against the median unmultiplied price."""
        parsed = [(q, parse_base(q.base)) for qs in quotes.values() for q in qs]
        reference = reference_prices((p, q.unit_price) for q, p in parsed if p is not None)
        best: dict[tuple[str, str], Resolved] = {}
        for q, p in parsed:
            venue = self._by_id(q.venue)
            choice = resolve(p, q.unit_price, reference) if p is not None else None
            if choice is None:
                if venue is not None:
                    venue.stats.rejected += 1
                log.info("%s %s: symbol maps ambiguously; dropped", q.venue, q.symbol)
                continue
            coin_id, multiplier = choice
            q.multiplier = multiplier
            assert p is not None
            symbol = p.base if multiplier != 1 else p.plain
            key = (q.venue, coin_id)
            current = best.get(key)
            if current is None or _rank(q) < _rank(current.quote):
                best[key] = Resolved(coin_id, symbol, q)
        out: dict[str, list[Resolved]] = {venue_id: [] for venue_id in quotes}
        for (venue_id, _), r in sorted(best.items()):
            out[venue_id].append(r)
        return out

    def _candidates(self, resolved: dict[str, list[Resolved]]) -> set[str]:
        rates: dict[str, list[float]] = {}
        for rs in resolved.values():
            for r in rs:
                rate = r.quote.funding_rate_per_hour
                if rate is not None:
                    rates.setdefault(r.coin_id, []).append(rate)
        negative = [
            (statistics.fmean(rs), coin)
            for coin, rs in rates.items()
            if sum(1 for x in rs if x < 0) >= self.min_negative_venues and statistics.fmean(rs) < 0
        ]
        negative.sort()
        return {coin for _, coin in negative[: self.max_candidates]}

    async def _enrich(
        self,
        candidates: set[str],
        resolved: dict[str, list[Resolved]],
        at: datetime,
        outcomes: dict[str, VenueOutcome],
        deadline: float,
    ) -> list[MarketSample]:
        history: list[MarketSample] = []
        default_since = int((at - timedelta(hours=self.history_hours)).timestamp() * 1000)
        price_from = self._price_venues(candidates, resolved)

        async def enrich_one(venue: Venue) -> None:
            own = [r for r in resolved.get(venue.id, []) if r.coin_id in candidates]
            if not own:
                return
            started = time.monotonic()
            try:
                await self._bounded(venue.enrich([r.quote for r in own]), deadline, self.timeouts.venue)
                history.extend(
                    await self._bounded(
                        self._history(venue, own, at, default_since, price_from),
                        deadline,
                        self.timeouts.venue,
                    )
                )
            except Exception as exc:
                self._fail(outcomes, venue.id, f"enrich: {_reason(exc)}", keep_status=True)
            outcomes[venue.id].latency_ms += (time.monotonic() - started) * 1000

        await asyncio.gather(*(enrich_one(v) for v in self.venues))
        return history

    def _price_venues(self, candidates: set[str], resolved: dict[str, list[Resolved]]) -> dict[str, str]:
        """The one venue each candidate's hourly price path is read from: the first venue, in
        :data:`VENUES` order, that lists it and has klines. One path per coin keeps it cheap; the
        cycles' own samples continue it from every venue."""
        chosen: dict[str, str] = {}
        for venue in self.venues:
            if not venue.provides("price_history"):
                continue
            for r in resolved.get(venue.id, []):
                if r.coin_id in candidates:
                    chosen.setdefault(r.coin_id, venue.id)
        return chosen

    async def _history(
        self,
        venue: Venue,
        own: Iterable[Resolved],
        at: datetime,
        default_since: int,
        price_from: dict[str, str],
    ) -> list[MarketSample]:
        """Past hours of ``own`` candidates on ``venue``, merged into one sample per coin and hour.

        Funding prints are fetched incrementally (72 h the first time, then only when a new print
        can exist); the price path (``price_hours``) and OI history (``oi_hours``) once per symbol
        and process, since later cycles store their own prices and OI every 30 minutes.
        """
        at_ms = int(at.timestamp() * 1000)
        hours: dict[tuple[str, int], dict[str, Any]] = {}

        def put(coin_id: str, ms: int, **values: float | None) -> None:
            if ms >= at_ms:
                return  # the current cycle's own sample covers ``at``
            row = hours.setdefault((coin_id, ms // 3_600_000), {})
            row.update({k: v for k, v in values.items() if v is not None})

        for r in own:
            q = r.quote
            key = (venue.id, q.symbol)
            interval_ms = int((q.funding_interval_hours or venue.default_interval_hours) * 3.6e6)
            cursor = self._history_cursor.get(key)
            if cursor is None or at_ms >= cursor + interval_ms:
                since = default_since if cursor is None else cursor + 1
                for ms, rate in await venue.funding_history(q, since):
                    if since <= ms < at_ms:
                        put(
                            r.coin_id,
                            ms,
                            funding_rate=rate,
                            funding_interval_hours=q.funding_interval_hours,
                        )
                        self._history_cursor[key] = max(self._history_cursor.get(key, 0), ms)
            if price_from.get(r.coin_id) == venue.id and key not in self._price_done:
                since = at_ms - self.price_hours * 3_600_000
                for bar in await venue.price_history(q, since):
                    if bar.at_ms >= since:
                        put(
                            r.coin_id,
                            bar.at_ms,
                            price=_div(bar.price, q.multiplier),
                            taker_buy_usd=bar.taker_buy_usd,
                            taker_sell_usd=bar.taker_sell_usd,
                        )
                self._price_done.add(key)
            if venue.provides("oi_history") and key not in self._oi_done:
                since = at_ms - self.oi_hours * 3_600_000
                for bar in await venue.oi_history(q, since):
                    if bar.at_ms >= since:
                        put(r.coin_id, bar.at_ms, open_interest_usd=bar.open_interest_usd)
                self._oi_done.add(key)
        return [
            MarketSample(
                coin_id=coin_id,
                venue=venue.id,
                at=datetime.fromtimestamp(hour * 3600, UTC),
                funding_rate=row.get("funding_rate"),
                funding_interval_hours=row.get("funding_interval_hours"),
                open_interest_usd=row.get("open_interest_usd"),
                price=row.get("price"),
                taker_buy_usd=row.get("taker_buy_usd"),
                taker_sell_usd=row.get("taker_sell_usd"),
            )
            for (coin_id, hour), row in sorted(hours.items())
        ]

    async def _onchain(
        self,
        resolved: dict[str, list[Resolved]],
        candidates: set[str],
        at: datetime,
        outcomes: dict[str, VenueOutcome],
        deadline: float,
    ) -> tuple[list[Coin], list[OnchainSample]]:
        prices: dict[str, list[float]] = {}
        for rs in resolved.values():
            for r in rs:
                if r.quote.coin_price:
                    prices.setdefault(r.coin_id, []).append(r.quote.coin_price)
        all_ids = {r.coin_id for rs in resolved.values() for r in rs}
        median = {cid: statistics.median(prices[cid]) if cid in prices else None for cid in all_ids}
        infos: dict[str, CoinInfo] = {}
        if self.coingecko is not None and all_ids:
            infos = await self._provider(
                self.coingecko,
                lambda: self.coingecko.lookup(median, settle=candidates),  # type: ignore[union-attr]
                outcomes,
                deadline,
                {},
            )
        samples = []
        for coin_id in sorted(candidates):
            info = infos.get(coin_id)
            if info is None or info.chain is None or info.contract is None:
                continue
            dex_chain, goplus_chain = CHAINS[info.chain]
            dex = sec = None
            if self.dexscreener is not None:
                dex = await self._provider(
                    self.dexscreener,
                    partial(self.dexscreener.token, dex_chain, info.contract),
                    outcomes,
                    deadline,
                    None,
                )
            if self.goplus is not None and goplus_chain is not None:
                sec = await self._provider(
                    self.goplus,
                    partial(self.goplus.token, goplus_chain, info.contract),
                    outcomes,
                    deadline,
                    None,
                )
            if dex is None and sec is None:
                continue
            samples.append(
                OnchainSample(
                    coin_id=coin_id,
                    at=at,
                    liquidity_usd=dex.liquidity_usd if dex else None,
                    volume_24h_usd=dex.volume_24h_usd if dex else None,
                    buys_24h=dex.buys_24h if dex else None,
                    sells_24h=dex.sells_24h if dex else None,
                    holders=sec.holders if sec else None,
                    top10_holders_pct=sec.top10_holders_pct if sec else None,
                    creator_pct=sec.creator_pct if sec else None,
                    owner_pct=sec.owner_pct if sec else None,
                    flags=sec.flags if sec else (),
                )
            )
        coins = [self._coin(cid, resolved, infos) for cid in sorted(all_ids)]
        return coins, samples

    async def _provider(
        self,
        provider: Provider,
        call: Callable[[], Awaitable[T]],
        outcomes: dict[str, VenueOutcome],
        deadline: float,
        fallback: T,
    ) -> T:
        outcome = outcomes.setdefault(provider.id, VenueOutcome(provider.id, "ok"))
        if outcome.status == "failed":
            return fallback  # one failure per cycle is enough for a provider
        started = time.monotonic()
        try:
            return await self._bounded(call(), deadline, self.timeouts.venue)
        except Exception as exc:
            outcome.status, outcome.error = "failed", _reason(exc)
            log.info("provider %s failed: %s", provider.id, _reason(exc))
            return fallback
        finally:
            outcome.latency_ms += (time.monotonic() - started) * 1000
            outcome.markets += 1

    # -- helpers -----------------------------------------------------------------------------

    async def _bounded(self, work: Awaitable[T], deadline: float, limit: float) -> T:
        remaining = min(limit, deadline - time.monotonic())
        if remaining <= 0:
            if asyncio.iscoroutine(work):
                work.close()
            raise TimeoutError("cycle deadline reached")
        try:
            async with asyncio.timeout(remaining):
                return await work
        except TimeoutError:
            raise TimeoutError(f"no answer within {remaining:.1f} s") from None

    def _by_id(self, source_id: str) -> Venue | None:
        for source in self.venues + self.providers:
            if source.id == source_id:
                return source
        return None

    @staticmethod
    def _fail(outcomes: dict[str, VenueOutcome], venue_id: str, error: str, *, keep_status: bool) -> None:
        outcome = outcomes[venue_id]
        outcome.error = error if outcome.error is None else f"{outcome.error}; {error}"
        if not keep_status:
            outcome.status = "failed"
        log.info("venue %s: %s", venue_id, error)

    @staticmethod
    def _sample(r: Resolved, at: datetime) -> MarketSample:
        q = r.quote
        return MarketSample(
            coin_id=r.coin_id,
            venue=q.venue,
            at=at,
            funding_rate=q.funding_rate,
            funding_interval_hours=q.funding_interval_hours,
            open_interest_usd=q.open_interest_usd,
            mark_price=_div(q.mark_price, q.multiplier),
            index_price=_div(q.index_price, q.multiplier),
            price=_div(q.price, q.multiplier),
            taker_buy_usd=q.taker_buy_usd,
            taker_sell_usd=q.taker_sell_usd,
            long_short_ratio=q.long_short_ratio,
        )

    @staticmethod
    def _coin(coin_id: str, resolved: dict[str, list[Resolved]], infos: dict[str, Any]) -> Coin:
        symbol = next(
            (r.symbol for rs in resolved.values() for r in rs if r.coin_id == coin_id),
            coin_id.upper(),
        )
        info = infos.get(coin_id)
        if info is None:
            return Coin(coin_id, symbol, symbol)
        return Coin(coin_id, symbol, info.name, info.chain, info.contract)


class _Empty(Exception):
    pass


def _div(value: float | None, by: int) -> float | None:
    return None if value is None else value / by


def _rank(q: Quote) -> tuple[bool, float]:
    """Which of two contracts of one coin on one venue to keep: USDT first, then larger OI."""
    return (q.quote != "USDT", -(q.open_interest_usd or 0.0))


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:199] + "…"
