"""The worked example of ``docs/methodology.md``: one coin, two venues, round numbers.

``tests/scoring/test_scoring_methodology.py`` scores these inputs and checks every number the
document prints, so the document and the code cannot drift apart.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from scoring.panel import MarketPanel, OnchainPanel

__all__ = ["EXAMPLE_AT", "example_panels"]

EXAMPLE_AT = datetime(2026, 11, 20, 12, tzinfo=UTC)
HOURS = 169  # the pipeline's window: 7 days + the run's hour


def example_panels() -> tuple[MarketPanel, OnchainPanel]:
    """Binance (8 h funding interval) and Hyperliquid (1 h interval), hourly, 169 hours.

    - funding: Binance -0.0002 per 8 h and Hyperliquid -0.00002 per 1 h for the last 48 hours;
      +0.0001 per 8 h and +0.00001 per 1 h before;
    - OI: Binance 2.5 M USD until 24 h before the run then 3 M; Hyperliquid 1 M throughout;
    - mark 0.1 % under index on both; taker buy 46 / sell 54 each hour; Binance long/short 0.8;
    - price 1.00, then 0.95 for the last 24 hours, then 0.90 at the run;
    - on-chain: liquidity 950 k (1 M a day earlier), 24 h volume 1.5 M of which 825 k sells,
      2,000 holders (2,050 at the previous run), top-10 share 60 % (60.5 %), old wallets 20 %.
    """
    panel = MarketPanel.empty(EXAMPLE_AT, ["example-token"], ["binance", "hyperliquid"], HOURS)
    d = panel.data
    last48 = slice(HOURS - 48, HOURS)
    before = slice(0, HOURS - 48)
    d["funding_interval_hours"][0, 0, :] = 8.0
    d["funding_interval_hours"][0, 1, :] = 1.0
    d["funding_per_hour"][0, 0, before] = 0.0001 / 8.0
    d["funding_per_hour"][0, 0, last48] = -0.0002 / 8.0
    d["funding_per_hour"][0, 1, before] = 0.00001
    d["funding_per_hour"][0, 1, last48] = -0.00002
    d["open_interest_usd"][0, 0, :] = 2.5e6
    d["open_interest_usd"][0, 0, HOURS - 23 :] = 3.0e6
    d["open_interest_usd"][0, 1, :] = 1.0e6
    price = np.full(HOURS, 1.0)
    price[HOURS - 25 : HOURS - 1] = 0.95
    price[HOURS - 1] = 0.90
    for j in (0, 1):
        d["index_price"][0, j, :] = price
        d["mark_price"][0, j, :] = price * (1 - 0.001)
        d["price"][0, j, :] = price
        d["taker_buy_usd"][0, j, :] = 46.0
        d["taker_sell_usd"][0, j, :] = 54.0
    d["long_short_ratio"][0, 0, :] = 0.8

    onchain = OnchainPanel.empty(1)
    latest = {
        "liquidity_usd": 950_000.0,
        "volume_24h_usd": 1_500_000.0,
        "buy_volume_24h_usd": 675_000.0,
        "sell_volume_24h_usd": 825_000.0,
        "holders": 2000.0,
        "top10_holders_pct": 60.0,
        "old_wallet_swap_pct_1d": 20.0,
    }
    for name, value in latest.items():
        onchain.latest[name][0] = value
    onchain.day_ago["liquidity_usd"][0] = 1_000_000.0
    onchain.previous_run["holders"][0] = 2050.0
    onchain.previous_run["top10_holders_pct"][0] = 60.5
    return panel, onchain
