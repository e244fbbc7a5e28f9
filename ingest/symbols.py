"""Venue base assets -> canonical coin ids.

Venues list low-priced coins as multiplied contracts: ``1000PEPE`` (Binance, Bybit, Bitget, ...),
``kPEPE`` (Hyperliquid), ``1MBABYDOGE`` and ``1000000MOG`` (Binance). One such contract is worth
``multiplier`` coins, so its price is ``multiplier`` times the coin's. Some real tickers look
multiplied (``1000SATS``, ``1INCH``), so a parsed prefix is only a hypothesis that
:func:`resolve` confirms against the price of the same coin elsewhere.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = ["BASE_ALIASES", "ParsedBase", "canonical_id", "parse_base", "resolve"]

#: Venue-specific names of the same coin (BitMEX and KuCoin call bitcoin XBT).
BASE_ALIASES: dict[str, str] = {"XBT": "BTC"}

_PREFIX = re.compile(r"^(?P<prefix>1000000|100000|10000|1000|100|1M|k)(?P<base>[A-Z][A-Z0-9]*)$")
_MULTIPLIERS = {
    "1000000": 1_000_000,
    "100000": 100_000,
    "10000": 10_000,
    "1000": 1_000,
    "100": 100,
    "1M": 1_000_000,
    "k": 1_000,
}
_VALID = re.compile(r"^[A-Za-z0-9]{1,30}$")

#: A unit price within this factor of the reference counts as the same coin. Multipliers are
#: at least 100x apart from 1, so a factor of 3 separates them with a wide margin.
PRICE_TOLERANCE = 3.0


@dataclass(frozen=True, slots=True)
class ParsedBase:
    """A venue base asset: the raw name, and the (coin, multiplier) it most likely means."""

    raw: str
    base: str
    multiplier: int

    @property
    def plain(self) -> str:
        """The raw name read literally (``1000SATS`` as its own coin)."""
        return BASE_ALIASES.get(self.raw.upper(), self.raw.upper())


def parse_base(raw: str) -> ParsedBase | None:
    """Split a multiplier prefix off a venue's base asset; ``None`` if the name is unusable."""
    raw = raw.strip()
    if not _VALID.match(raw):
        return None
    match = _PREFIX.match(raw)
    if match:
        base = match["base"].upper()
        return ParsedBase(raw, BASE_ALIASES.get(base, base), _MULTIPLIERS[match["prefix"]])
    upper = raw.upper()
    return ParsedBase(raw, BASE_ALIASES.get(upper, upper), 1)


def canonical_id(base: str) -> str:
    """The canonical coin id: the coin's ticker in lower case (``pepe``, ``btc``)."""
    return base.lower()


def _close(a: float, b: float) -> bool:
    return abs(math.log(a / b)) <= math.log(PRICE_TOLERANCE)


def resolve(parsed: ParsedBase, price: float | None, reference: Mapping[str, float]) -> tuple[str, int] | None:
    """Pick ``(coin_id, multiplier)`` for a contract, checking the unit price where possible.

    ``reference`` maps coin ids to the median price of unmultiplied contracts across venues.
    Returns ``None`` when the price contradicts both readings (an ambiguous symbol: dropped and
    counted rather than guessed).
    """
    if parsed.multiplier == 1:
        return canonical_id(parsed.base), 1
    split_id, plain_id = canonical_id(parsed.base), canonical_id(parsed.plain)
    if price is None or price <= 0:
        return (split_id, parsed.multiplier) if split_id not in reference else None
    split_ref, plain_ref = reference.get(split_id), reference.get(plain_id)
    if split_ref is not None and _close(price / parsed.multiplier, split_ref):
        return split_id, parsed.multiplier
    if plain_ref is not None and _close(price, plain_ref):
        return plain_id, 1
    if split_ref is None and plain_ref is None:
        return split_id, parsed.multiplier
    return None


def reference_prices(pairs: Iterable[tuple[ParsedBase, float | None]]) -> dict[str, float]:
    """Median price per coin over unmultiplied contracts with a positive price."""
    prices: dict[str, list[float]] = {}
    for parsed, price in pairs:
        if parsed.multiplier == 1 and price is not None and price > 0:
            prices.setdefault(canonical_id(parsed.base), []).append(price)
    return {coin: statistics.median(values) for coin, values in prices.items()}
