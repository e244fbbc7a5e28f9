"""On-chain context providers: CoinGecko (coin list), DexScreener (DEX flow), GoPlus (holders)."""

from ingest.onchain.coingecko import CoinGecko, CoinInfo
from ingest.onchain.dexscreener import DexScreener
from ingest.onchain.goplus import GoPlus

__all__ = ["CoinGecko", "CoinInfo", "DexScreener", "GoPlus"]
