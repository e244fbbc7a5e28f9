"""The documented contract's constants: signal metadata, description, coin fields and their types."""

from __future__ import annotations

from ingest.snapshot import VENUES

__all__ = ["COIN_FIELDS", "DESCRIPTION", "SIGNAL", "VENUES", "signal_block"]

DESCRIPTION = (
    "Insider hedge-pressure scores based on cross-venue negative funding, open interest, basis, "
    "CVD, sell-side flow, and wallet/supply context."
)
METHODOLOGY = (
    "Composite 0-10 pressure score built around observable short-hedge behavior. Negative "
    "cross-venue funding is required; OI, basis, CVD, sell-side flow, and wallet/supply context "
    "raise conviction. Weights, thresholds and validation are published in docs/methodology.md."
)
UPDATE_FREQUENCY = "every 30 minutes"


def update_frequency(interval_seconds: int) -> str:
    if interval_seconds == 1800:
        return UPDATE_FREQUENCY
    if interval_seconds % 3600 == 0:
        hours = interval_seconds // 3600
        return "every hour" if hours == 1 else f"every {hours} hours"
    if interval_seconds % 60 == 0:
        return f"every {interval_seconds // 60} minutes"
    return f"every {interval_seconds} seconds"


def signal_block(interval_seconds: int = 1800) -> dict[str, object]:
    return {
        "methodology": METHODOLOGY,
        "update_frequency": update_frequency(interval_seconds),
        "exchanges": list(VENUES.values()),
    }


SIGNAL = signal_block()

#: Every coin field of the seed, in its order, with its JSON type ("number|null" where nullable).
COIN_FIELDS: dict[str, str] = {
    "coin_id": "string",
    "symbol": "string",
    "name": "string",
    "score": "number",
    "avg_funding_72h": "number",
    "funding_magnitude": "number",
    "funding_persistence": "number",
    "wallet_concentration": "number",
    "holder_quality_deterioration": "number",
    "coordination_risk": "number",
    "distribution_pressure": "number",
    "market_confirmation": "number",
    "manipulation_phase": "string",
    "consecutive_negative_days": "integer",
    "price_change_24h": "number",
    "price_change_7d": "number",
    "top10_holders_pct": "number|null",
    "volume_to_liquidity_24h": "number|null",
    "old_wallet_swap_pct_1d": "number|null",
    "holders_change_pct": "number|null",
    "top10_holders_pct_change": "number|null",
    "signal_start_date": "string",
    "updated_at": "string",
}
