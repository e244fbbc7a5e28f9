"""The versioned model configuration (``scoring/model.toml``), loaded into typed sections."""

from __future__ import annotations

import tomllib
from itertools import pairwise
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from scoring.errors import ModelConfigError

__all__ = ["DEFAULT_MODEL_PATH", "ModelConfig", "load_model_config"]

DEFAULT_MODEL_PATH = Path(__file__).with_name("model.toml")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Window(_Section):
    funding_hours: int
    breadth_hours: int
    confirm_hours: int
    basis_hours: int
    fast_hours: int
    price_days: int


class Gate(_Section):
    min_funding_per_8h: float
    market_spread_k: float


class Funding(_Section):
    magnitude_scale_per_8h: float
    persistence_share_weight: float
    persistence_streak_weight: float
    market_level_quantile: float
    recent_half_life_hours: float
    staleness_allowance_hours: float
    market_min_coins: int
    breadth_min_venues: int


class Hedge(_Section):
    magnitude: float
    persistence: float
    breadth: float


class Confirmation(_Section):
    oi: float
    basis: float
    cvd: float
    crowding: float
    price: float
    persistence: float
    oi_change_full: float
    basis_full: float
    cvd_full: float
    crowding_full: float
    price_7d_full: float
    drawdown_full: float
    fast_share: float
    crowding_shift_full: float
    crowding_shift_share: float
    signed_flow: bool
    market_adjust: bool


class Flow(_Section):
    dex_imbalance: float
    liquidity: float
    cvd: float
    oi: float
    dex_imbalance_full: float
    liquidity_drop_full: float


class Supply(_Section):
    top10_floor: float
    top10_full: float
    old_wallet_full: float
    holders_fragile: float
    volume_to_liquidity_full: float
    holders_change_full: float
    top10_change_full: float
    insider_full: float
    previous_run_max_age_hours: float


class Wallet(_Section):
    top10: float
    insider: float
    old_wallet: float


class HolderQuality(_Section):
    fragile: float
    top10: float
    liquidity: float
    churn: float


class Coordination(_Section):
    old_wallet: float
    churn: float
    holder_moves: float
    distributing: float


class Composite(_Section):
    core_floor: float
    hedge_exponent: float
    market_weight: float
    supply_boost: float
    scale: float
    cap: float
    saturation_knee: float
    squeeze_penalty: float
    squeeze_price_full: float
    squeeze_oi_full: float


class Scale(_Section):
    """The published scale: a strictly increasing map from the composite (after the knee's
    saturation) to the score, piecewise linear through the ``raw`` -> ``score`` knots and bending
    smoothly toward the cap above the last knot (the same slope at the knot, never reaching it).
    The knots are fitted on real data (``insider-selling calibrate``; ``fitted_on`` says where).
    No knots: the composite is the score."""

    raw: tuple[float, ...] = ()
    score: tuple[float, ...] = ()
    fitted_on: str = ""

    @model_validator(mode="after")
    def _knots(self) -> Scale:
        if len(self.raw) != len(self.score):
            raise ValueError("scale.raw and scale.score need the same number of knots")
        if self.raw:
            if len(self.raw) < 2 or self.raw[0] != 0.0 or self.score[0] != 0.0:
                raise ValueError("the scale starts at the knot (0, 0) and has at least two knots")
            for values in (self.raw, self.score):
                if any(b <= a for a, b in pairwise(values)):
                    raise ValueError("scale knots must be strictly increasing")
        return self


class Phase(_Section):
    active_acceleration: float
    active_oi: float
    persistent_share: float
    persistent_days: int
    supply_context: float
    squeeze_flow: float
    emerging_streak_hours: int


class ModelConfig(_Section):
    version: str
    window: Window
    gate: Gate
    funding: Funding
    hedge: Hedge
    confirmation: Confirmation
    flow: Flow
    supply: Supply
    wallet: Wallet
    holder_quality: HolderQuality
    coordination: Coordination
    composite: Composite
    scale: Scale = Scale()
    phase: Phase


def load_model_config(path: Path | None = None, **overrides: Any) -> ModelConfig:
    """Read and validate the model file; ``overrides`` replace whole top-level keys (tests)."""
    path = path or DEFAULT_MODEL_PATH
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ModelConfigError(f"{path}: {exc}") from exc
    raw.update(overrides)
    try:
        return ModelConfig.model_validate(raw)
    except ValidationError as exc:
        raise ModelConfigError(f"{path}: {exc}") from exc
