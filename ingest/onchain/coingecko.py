"""CoinGecko coin list: names, slugs and contract addresses for canonical coin ids.

``/api/v3/coins/list?include_platform=true`` (one request, cached for a day) maps tickers to coins.
A ticker many coins share (there are dozens of ``pepe``s) is settled with one
``/api/v3/coins/markets?ids=...`` request: the largest market cap whose USD price is within a
factor 3 of the venues' price. If none fits, the coin keeps no name and no contract.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from pydantic import Field

from ingest.onchain.base import CHAINS, Provider
from ingest.venues.base import Num, Raw


class ListedCoin(Raw):
    id: str
    symbol: str
    name: str
    platforms: dict[str, str | None] = Field(default_factory=dict)


class MarketRow(Raw):
    id: str
    current_price: Num = None
    market_cap: Num = None


@dataclass(frozen=True, slots=True)
class CoinInfo:
    slug: str
    name: str
    chain: str | None
    contract: str | None


def _contract(platforms: Mapping[str, str | None]) -> tuple[str | None, str | None]:
    for chain in CHAINS:
        address = platforms.get(chain)
        if address:
            return chain, address
    return None, None


class CoinGecko(Provider):
    id = "coingecko"
    base_url = "https://api.coingecko.com"
    min_request_interval = 2.5  # the public tier allows about 30 calls per minute

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._by_symbol: dict[str, list[ListedCoin]] | None = None

    async def load(self) -> None:
        if self._by_symbol is not None:
            return
        listed = self.rows(ListedCoin, await self.get("/api/v3/coins/list", {"include_platform": "true"}))
        by_symbol: dict[str, list[ListedCoin]] = {}
        for coin in listed:
            by_symbol.setdefault(coin.symbol.lower(), []).append(coin)
        self._by_symbol = by_symbol

    async def lookup(self, prices: Mapping[str, float | None], settle: Collection[str] = ()) -> dict[str, CoinInfo]:
        """``coin_id -> CoinInfo`` for coin ids (venue tickers) with their venue prices.

        Tickers with one listed coin resolve from the cached list; shared tickers are settled
        (one more request) only for the ids in ``settle``.
        """
        await self.load()
        assert self._by_symbol is not None
        found: dict[str, CoinInfo] = {}
        ambiguous: dict[str, list[ListedCoin]] = {}
        for coin_id in prices:
            matches = self._by_symbol.get(coin_id, [])
            if len(matches) == 1:
                found[coin_id] = self._info(matches[0])
            elif matches and coin_id in settle:
                ambiguous[coin_id] = matches
        if ambiguous:
            ids = sorted({m.id for ms in ambiguous.values() for m in ms})[:250]
            rows = self.rows(
                MarketRow,
                await self.get("/api/v3/coins/markets", {"vs_currency": "usd", "ids": ",".join(ids)}),
            )
            market = {r.id: r for r in rows}
            for coin_id, matches in ambiguous.items():
                best = self._settle(matches, market, prices.get(coin_id))
                if best is not None:
                    found[coin_id] = self._info(best)
        return found

    @staticmethod
    def _settle(matches: list[ListedCoin], market: Mapping[str, MarketRow], price: float | None) -> ListedCoin | None:
        fitting = []
        for coin in matches:
            row = market.get(coin.id)
            if row is None or not row.market_cap or not row.current_price or not price:
                continue
            if abs(math.log(row.current_price / price)) <= math.log(3.0):
                fitting.append((row.market_cap, coin))
        return max(fitting, key=lambda pair: pair[0])[1] if fitting else None

    @staticmethod
    def _info(coin: ListedCoin) -> CoinInfo:
        chain, contract = _contract(coin.platforms)
        return CoinInfo(coin.id, coin.name, chain, contract)
