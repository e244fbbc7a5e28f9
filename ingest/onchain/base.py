"""On-chain providers share the venue base class (httpx transport, validation, retries)."""

from __future__ import annotations

from ingest.venues.base import HttpVenue, Quote

__all__ = ["CHAINS", "Provider"]

#: CoinGecko platform -> (DexScreener chain id, GoPlus chain id), in order of preference.
CHAINS: dict[str, tuple[str, str | None]] = {
    "ethereum": ("ethereum", "1"),
    "binance-smart-chain": ("bsc", "56"),
    "base": ("base", "8453"),
    "arbitrum-one": ("arbitrum", "42161"),
    "polygon-pos": ("polygon", "137"),
    "solana": ("solana", None),  # GoPlus' Solana endpoint has another shape; not read
}


class Provider(HttpVenue):
    """An on-chain data provider: no markets to scan, only per-token lookups."""

    async def scan(self) -> list[Quote]:
        return []
