"""One connector per venue, all on :class:`ingest.venues.base.Venue`."""

from __future__ import annotations

from ingest.venues.base import CcxtVenue, HttpVenue, Quote, Venue
from ingest.venues.binance import Binance
from ingest.venues.bingx import Bingx
from ingest.venues.bitget import Bitget
from ingest.venues.bitmex import Bitmex
from ingest.venues.bybit import Bybit
from ingest.venues.coinex import Coinex
from ingest.venues.deribit import Deribit
from ingest.venues.gate import Gate
from ingest.venues.htx import Htx
from ingest.venues.hyperliquid import Hyperliquid
from ingest.venues.kucoin import Kucoin
from ingest.venues.mexc import Mexc
from ingest.venues.okx import Okx

__all__ = ["CONNECTORS", "CcxtVenue", "HttpVenue", "Quote", "Venue"]

#: Connector class per venue id, in the order of :data:`ingest.snapshot.VENUES`.
CONNECTORS: dict[str, type[Venue]] = {
    cls.id: cls
    for cls in (
        Binance,
        Bybit,
        Okx,
        Gate,
        Bitget,
        Hyperliquid,
        Deribit,
        Bitmex,
        Htx,
        Bingx,
        Coinex,
        Kucoin,
        Mexc,
    )
}
