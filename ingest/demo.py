"""The demo market: a deterministic, seeded simulator of ~200 coins on the 13 venues.

It plants insider-selling episodes (persistent negative funding across venues, rising OI, negative
basis, taker and DEX selling, weakening liquidity, old wallets swapping) and confounders. Each
episode draws its own effect size per family from a wide (log-normal) distribution, and many lack
one or two confirmation families altogether, so no episode looks like the model's thresholds.
Basis is its own process, not a multiple of funding. Confounders:

- a market-wide deleveraging dip: most coins' funding turns negative at once, prices and OI fall,
  takers sell and longs are liquidated (per-coin beta);
- a market-wide hedge wave (when configured): for 72 h, 80 % of coins get negative funding and
  rising OI, each with its own strength;
- short squeezes: negative funding with shorts closing (OI falling), taker buying and price rising;
- concentrated holders with positive funding (supply risk without hedge pressure);
- coins whose funding sits mildly negative for no reason at all.

The labels (:attr:`DemoMarket.episodes`, :attr:`DemoMarket.market_dip`) are for the validator
only. Nothing in the scoring path reads them: scoring sees the stored snapshots, like live data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import numpy as np

from ingest.snapshot import VENUES, Coin, MarketSample, OnchainSample
from ingest.source import SnapshotBatch, VenueOutcome

__all__ = ["DemoConfig", "DemoMarket", "DemoSource", "DemoStep", "Episode"]

HOUR = timedelta(hours=1)
VENUE_IDS = list(VENUES)
#: How likely a non-major coin is listed on each venue (order of VENUES).
LISTING_PROBABILITY = np.array([0.9, 0.85, 0.8, 0.85, 0.75, 0.6, 0.15, 0.25, 0.5, 0.6, 0.45, 0.55, 0.8])
MAJORS = [
    ("bitcoin", "BTC", "Bitcoin"),
    ("ethereum", "ETH", "Ethereum"),
    ("solana", "SOL", "Solana"),
    ("ripple", "XRP", "XRP"),
    ("dogecoin", "DOGE", "Dogecoin"),
    ("cardano", "ADA", "Cardano"),
    ("chainlink", "LINK", "Chainlink"),
    ("avalanche-2", "AVAX", "Avalanche"),
    ("sui", "SUI", "Sui"),
    ("litecoin", "LTC", "Litecoin"),
]
SYLLABLES = [
    "ka",
    "zo",
    "mi",
    "ra",
    "tu",
    "vex",
    "lo",
    "qi",
    "nor",
    "sa",
    "fi",
    "da",
    "pex",
    "ul",
    "bri",
    "on",
    "tek",
    "yo",
    "gal",
    "mu",
    "xen",
    "ri",
    "cor",
    "va",
]
BASE_FUNDING = 1.0e-5  # per hour: +0.008 % per 8 h, the usual positive carry


#: The families an insider episode can move besides funding (an episode may lack one or two).
EFFECT_FAMILIES = ("oi", "taker", "crowding", "basis", "onchain")


@dataclass(frozen=True, slots=True)
class Episode:
    """A planted label: ``insider`` episodes are positives; ``squeeze`` episodes are confounders.

    ``effects`` are the episode's multipliers per family (funding first, then
    :data:`EFFECT_FAMILIES`), each drawn log-normal around 1; 0 means the family does not move.
    """

    coin_id: str
    kind: Literal["insider", "squeeze"]
    start: datetime
    end: datetime
    intensity: float
    effects: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0, 1.0)

    def active(self, at: datetime) -> bool:
        return self.start <= at < self.end


@dataclass(frozen=True, slots=True)
class DemoConfig:
    seed: int = 7
    coins: int = 200
    hard: bool = False
    #: Hours of planted schedule after the origin (episodes and the market dip fall inside it).
    horizon_hours: int = 24 * 30
    #: Episodes already running when the default backfill ends, so the leaderboard starts full.
    warm_episodes: int = 12
    #: Hours after the origin at which the market-wide dip starts, and its length.
    dip_start_hours: int | None = None
    dip_hours: int = 18
    #: Hours after the origin at which a market-wide hedge wave starts (None: no wave), its length
    #: and the share of coins it moves.
    wave_start_hours: int | None = None
    wave_hours: int = 72
    wave_share: float = 0.8
    #: Share of coins whose funding sits mildly negative for no reason, and how far below zero
    #: (per hour, drawn uniformly between the two).
    mild_share: float = 0.06
    mild_range: tuple[float, float] = (3e-6, 1.2e-5)
    #: Multiplies every episode's intensity (effect sizes and funding).
    effect_scale: float = 1.0

    @classmethod
    def market_like(cls, seed: int = 7, coins: int = 200) -> DemoConfig:
        """The served demo: a market whose published scores are distributed like a real one's.
        Tuned against the Binance replay's held-out half (``docs/validation.md``, score bands):
        about a fifth of the coins listed, most of them mildly negative for no reason, and weak
        episodes, so the bands hold about 30 / 57 / 10 / 3 % of listed coins (real: 40 / 47 / 11 /
        2 %; measured over seeds 1-3, methodology "The scale"). The defaults (strong episodes,
        few mild coins) stay the synthetic validator's stress test."""
        return cls(seed=seed, coins=coins, mild_share=0.45, mild_range=(8e-6, 1.3e-5), effect_scale=0.22)


@dataclass(frozen=True, slots=True)
class DemoStep:
    """One sample time as arrays: market fields ``(coins, venues)``, on-chain fields ``(coins,)``.

    Field names and units are those of :class:`MarketSample` and :class:`OnchainSample`.
    """

    at: datetime
    market: dict[str, np.ndarray]
    onchain: dict[str, np.ndarray]


class DemoMarket:
    """The simulator's state. ``advance(at)`` moves it forward and returns that sample's rows."""

    def __init__(self, config: DemoConfig, origin: datetime, *, warm_until: datetime | None = None):
        self.config = config
        self.origin = origin.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        rng = np.random.default_rng(config.seed)
        self._rng = rng
        n, v = config.coins, len(VENUE_IDS)
        hard = config.hard
        self.noise = 1.6 if hard else 1.0

        self.coins: list[Coin] = []
        names: set[str] = set()
        for i in range(n):
            if i < len(MAJORS):
                cid, sym, name = MAJORS[i]
            else:
                while True:
                    parts = rng.choice(SYLLABLES, size=int(rng.integers(2, 4)))
                    name = "".join(parts).capitalize()
                    if name not in names:
                        break
                cid, sym = name.lower(), name[:5].upper()
            names.add(name)
            has_contract = i >= len(MAJORS) and rng.random() < 0.6
            contract = f"0x{rng.integers(0, 2**63):016x}{i:024x}" if has_contract else None
            self.coins.append(Coin(cid, sym, name, "ethereum" if has_contract else None, contract))
        self.onchain_mask = np.array([c.contract is not None for c in self.coins])

        listed = rng.random((n, v)) < LISTING_PROBABILITY * (0.7 if hard else 1.0)
        listed[: len(MAJORS)] = True
        listed[np.arange(n), rng.integers(0, 6, size=n)] = True  # at least one big venue
        self.listed = listed
        interval = np.full((n, v), 8.0)
        interval[:, VENUE_IDS.index("hyperliquid")] = 1.0
        four_hour = rng.random((n, v)) < 0.18
        four_hour[:, [VENUE_IDS.index("hyperliquid"), VENUE_IDS.index("deribit")]] = False
        interval[four_hour] = 4.0
        interval[:, VENUE_IDS.index("deribit")] = 8.0
        self.interval = interval

        self.price = np.exp(rng.normal(0.0, 2.5, size=n))
        self.price[: len(MAJORS)] = np.array([95000, 3400, 180, 2.2, 0.3, 0.7, 18, 30, 3.5, 90.0])
        self.vol = rng.uniform(0.004, 0.012, size=n) * self.noise
        self.oi = np.exp(rng.normal(16.0, 1.3, size=(n, 1))) * rng.uniform(0.3, 1.0, size=(n, v))
        self.oi[: len(MAJORS)] *= 40.0
        self.coin_bias = rng.normal(0.0, 3e-6, size=n)
        mild = rng.random(n) < config.mild_share
        self.coin_bias[mild] = -rng.uniform(*config.mild_range, size=int(mild.sum()))
        self.venue_bias = rng.normal(0.0, 2e-6, size=(1, v))
        # How hard each coin is hit by the market-wide dip (funding, price, flow): real dips are
        # not uniform, so the idiosyncratic adjustment has to cope with high-beta coins.
        self.dip_beta = rng.uniform(0.6, 1.4, size=n)
        # The hedge wave: which coins it moves and how hard (a wide spread of strengths).
        self.wave_member = rng.random(n) < config.wave_share
        self.wave_beta = rng.lognormal(0.0, 0.5, size=n)
        self.coin_basis = rng.normal(0.0, 2e-4, size=n)
        self.funding_noise = np.zeros(n)
        self.liquidity = np.exp(rng.normal(14.0, 1.2, size=n))
        self.holders = np.exp(rng.normal(9.5, 1.2, size=n))
        self.top10 = np.clip(rng.beta(2.0, 3.0, size=n) * 100.0, 5.0, 95.0)
        concentrated = self.onchain_mask & (rng.random(n) < 0.15)
        self.top10[concentrated] = rng.uniform(75.0, 92.0, size=int(concentrated.sum()))
        self.concentrated = concentrated

        self.episodes = self._plan_episodes(warm_until or self.origin + timedelta(hours=192))
        start = config.dip_start_hours
        if start is None:
            start = int(config.horizon_hours * 0.45)
        dip_start = self.origin + timedelta(hours=start)
        self.market_dip = (dip_start, dip_start + timedelta(hours=config.dip_hours))
        self.wave: tuple[datetime, datetime] | None = None
        if config.wave_start_hours is not None:
            wave_start = self.origin + timedelta(hours=config.wave_start_hours)
            self.wave = (wave_start, wave_start + timedelta(hours=config.wave_hours))
        self._index = {c.coin_id: i for i, c in enumerate(self.coins)}
        self.at: datetime | None = None

    def _plan_episodes(self, warm_until: datetime) -> list[Episode]:
        rng = self._rng
        cfg = self.config
        n = cfg.coins
        hard = cfg.hard
        episodes: list[Episode] = []
        candidates = rng.permutation(np.arange(len(MAJORS), n))
        per_coin_p = 0.35
        lo, hi = (24, 72) if hard else (48, 144)
        for idx in candidates[: cfg.warm_episodes]:
            duration = int(rng.integers(lo, hi))
            start = warm_until - timedelta(hours=int(rng.integers(12, min(duration, 96))))
            episodes.append(self._episode(int(idx), "insider", start, duration, hard))
        for idx in candidates[cfg.warm_episodes :]:
            roll = rng.random()
            if roll < per_coin_p:
                duration = int(rng.integers(lo, hi))
                offset = int(rng.integers(0, max(1, cfg.horizon_hours - duration)))
                start = self.origin + timedelta(hours=offset)
                episodes.append(self._episode(int(idx), "insider", start, duration, hard))
            elif roll < per_coin_p + 0.12:
                duration = int(rng.integers(10, 30))
                offset = int(rng.integers(0, max(1, cfg.horizon_hours - duration)))
                start = self.origin + timedelta(hours=offset)
                episodes.append(self._episode(int(idx), "squeeze", start, duration, hard))
        return episodes

    def _episode(
        self, idx: int, kind: Literal["insider", "squeeze"], start: datetime, duration: int, hard: bool
    ) -> Episode:
        rng = self._rng
        intensity = float(rng.uniform(0.5, 1.0) if hard else rng.uniform(0.8, 1.4)) * self.config.effect_scale
        # effect sizes per family: log-normal around the intensity (a factor ~2 either way is
        # common), independent of each other; an episode lacks 0, 1 or 2 confirmation families
        effects = rng.lognormal(0.0, 0.6, size=1 + len(EFFECT_FAMILIES))
        missing = int(rng.choice(3, p=[0.4, 0.35, 0.25]))
        if kind == "insider" and missing:
            effects[1 + rng.choice(len(EFFECT_FAMILIES), size=missing, replace=False)] = 0.0
        return Episode(
            self.coins[idx].coin_id,
            kind,
            start,
            start + timedelta(hours=duration),
            intensity,
            tuple(float(e) for e in effects),
        )

    def labels_at(self, at: datetime) -> dict[str, str]:
        """Validator only: coin id -> active episode kind at ``at``."""
        return {e.coin_id: e.kind for e in self.episodes if e.active(at)}

    def dip_active(self, at: datetime) -> bool:
        return self.market_dip[0] <= at < self.market_dip[1]

    def wave_active(self, at: datetime) -> bool:
        return self.wave is not None and self.wave[0] <= at < self.wave[1]

    def _drivers(self, at: datetime) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
        """Per-coin insider effects ``(2 + families, coins)``: the episode's level (intensity x
        ramp), then its funding and family effects; squeeze intensity at ``at``, the market dip
        strength, and the per-coin hedge-wave strength."""
        n = self.config.coins
        insider = np.zeros((2 + len(EFFECT_FAMILIES), n))
        squeeze = np.zeros(n)
        for e in self.episodes:
            if e.active(at):
                ramp = min(1.0, (at - e.start) / timedelta(hours=12) + 0.25)
                i = self._index[e.coin_id]
                if e.kind == "insider":
                    insider[0, i] = e.intensity * ramp
                    insider[1:, i] = e.intensity * ramp * np.asarray(e.effects)
                else:
                    squeeze[i] = e.intensity * ramp
        dip = 1.0 if self.dip_active(at) else 0.0
        wave = np.zeros(n)
        if self.wave is not None and self.wave_active(at):
            ramp = min(1.0, (at - self.wave[0]) / timedelta(hours=6) + 1 / 6)
            wave = self.wave_member * self.wave_beta * ramp
        return insider, squeeze, dip, wave

    def step(self, at: datetime) -> DemoStep:
        """Move the market to ``at`` and return that sample as arrays (NaN: not listed / no data).

        This is exactly what :meth:`advance` turns into sample rows; the synthetic validator reads
        the arrays directly to score hundreds of runs quickly. Labels are not part of it.
        """
        at = at.astimezone(UTC)
        dt = 1.0 if self.at is None else max((at - self.at) / HOUR, 0.0)
        self.at = at
        rng = self._rng
        n, v = self.config.coins, len(VENUE_IDS)
        effects, squeeze, dip, wave = self._drivers(at)
        insider, i_fund, i_oi, i_taker, i_crowd, i_basis, i_chain = effects
        sq = math.sqrt(max(dt, 1e-9))
        beta = self.dip_beta

        market_ret = rng.normal(0.0, 0.004) * sq
        ret = (
            rng.normal(0.0, 1.0, size=n) * self.vol * sq
            + market_ret * beta
            - dip * beta * 0.006 * dt
            - insider * 0.0015 * dt
            + squeeze * 0.012 * dt
        )
        self.price *= np.exp(ret)

        phi = math.exp(-dt / 12.0)
        self.funding_noise = phi * self.funding_noise + rng.normal(
            0.0, 4e-6 * self.noise * math.sqrt(1 - phi * phi), size=n
        )
        coin_funding = (
            BASE_FUNDING
            + self.coin_bias
            + self.funding_noise
            - i_fund * 3.2e-5
            - squeeze * 2.5e-5
            - dip * beta * 3.5e-5
            - wave * 3.0e-5
        )
        venue_noise = rng.normal(0.0, 2.5e-6 * self.noise, size=(n, v))
        per_hour = coin_funding[:, None] + self.venue_bias + venue_noise
        rate = per_hour * self.interval

        oi_growth = (
            rng.normal(0.0, 0.006 * self.noise, size=(n, v)) * sq
            + (i_oi[:, None] * 0.006 - squeeze[:, None] * 0.02 - dip * beta[:, None] * 0.004 + wave[:, None] * 0.004)
            * dt
        )
        self.oi *= np.exp(oi_growth)
        oi_usd = self.oi.copy()

        # Basis is its own process (a coin's level, noise, an episode's own effect, the dip), not a
        # multiple of funding.
        basis = (
            self.coin_basis[:, None]
            - i_basis[:, None] * 6e-4
            - dip * beta[:, None] * 3e-4
            + rng.normal(0.0, 1.5e-4 * self.noise, size=(n, v))
        )
        index = np.broadcast_to(self.price[:, None], (n, v)) * np.exp(rng.normal(0.0, 2e-4, size=(n, v)))
        mark = index * (1.0 + basis)
        traded = oi_usd * 0.04 * max(dt, 0.25) * np.exp(rng.normal(0.0, 0.3, size=(n, v)))
        sell_share = np.clip(
            0.5
            + rng.normal(0.0, 0.035 * self.noise, size=(n, v))
            + i_taker[:, None] * 0.05
            - squeeze[:, None] * 0.12
            + dip * beta[:, None] * 0.05,
            0.05,
            0.95,
        )
        ls_ratio = np.exp(
            rng.normal(0.05, 0.12, size=(n, v))
            - i_crowd[:, None] * 0.25
            - squeeze[:, None] * 0.35
            - dip * beta[:, None] * 0.2
        )
        ls_ratio[:, 6:] = np.nan  # only the six big venues publish a long/short ratio
        price = mark * (1.0 + rng.normal(0.0, 5e-5, size=(n, v)))

        unlisted = ~self.listed
        market = {
            "funding_rate": rate,
            "funding_interval_hours": self.interval.copy(),
            "open_interest_usd": oi_usd,
            "mark_price": mark,
            "index_price": np.array(index),
            "price": price,
            "taker_buy_usd": traded * (1.0 - sell_share),
            "taker_sell_usd": traded * sell_share,
            "long_short_ratio": ls_ratio,
        }
        for values in market.values():
            values[unlisted] = np.nan

        # On-chain: weakening liquidity, sell-heavy DEX flow and old wallets waking up in episodes.
        self.liquidity *= np.exp(rng.normal(0.0, 0.01, size=n) * sq - i_chain * 0.004 * dt)
        self.holders *= np.exp(rng.normal(0.0, 0.0015, size=n) * sq + i_chain * 0.0008 * dt)
        self.top10 = np.clip(self.top10 + rng.normal(0.0, 0.05, size=n) * sq - i_chain * 0.03 * dt, 1.0, 99.0)
        volume = self.liquidity * np.exp(rng.normal(-0.3, 0.4, size=n) + i_chain * 0.9)
        sell_frac = np.clip(
            0.5 + rng.normal(0.0, 0.05 * self.noise, size=n) + i_chain * 0.09 - squeeze * 0.1, 0.05, 0.95
        )
        trades = np.maximum(volume / 400.0, 10.0)
        old_wallet = np.clip(rng.normal(8.0, 3.0, size=n) + i_chain * 25.0 + self.concentrated * 12.0, 0.0, 100.0)
        onchain = {
            "liquidity_usd": self.liquidity.copy(),
            "volume_24h_usd": volume,
            "buys_24h": np.round(trades * (1 - sell_frac)),
            "sells_24h": np.round(trades * sell_frac),
            "buy_volume_24h_usd": volume * (1 - sell_frac),
            "sell_volume_24h_usd": volume * sell_frac,
            "holders": np.round(self.holders),
            "top10_holders_pct": self.top10.copy(),
            "old_wallet_swap_pct_1d": old_wallet,
        }
        for values in onchain.values():
            values[~self.onchain_mask] = np.nan
        return DemoStep(at, market, onchain)

    def advance(self, at: datetime) -> tuple[list[MarketSample], list[OnchainSample]]:
        """Move the market to ``at`` and return that sample's rows (what a source delivers)."""
        step = self.step(at)
        at = step.at
        m = step.market
        market: list[MarketSample] = []
        rows, cols = np.nonzero(self.listed)
        columns = {name: values[rows, cols].tolist() for name, values in m.items()}
        coin_ids = [c.coin_id for c in self.coins]
        for k, (i, j) in enumerate(zip(rows.tolist(), cols.tolist(), strict=True)):
            ls = columns["long_short_ratio"][k]
            market.append(
                MarketSample(
                    coin_id=coin_ids[i],
                    venue=VENUE_IDS[j],
                    at=at,
                    funding_rate=columns["funding_rate"][k],
                    funding_interval_hours=columns["funding_interval_hours"][k],
                    open_interest_usd=columns["open_interest_usd"][k],
                    mark_price=columns["mark_price"][k],
                    index_price=columns["index_price"][k],
                    price=columns["price"][k],
                    taker_buy_usd=columns["taker_buy_usd"][k],
                    taker_sell_usd=columns["taker_sell_usd"][k],
                    long_short_ratio=None if ls != ls else ls,
                )
            )
        onchain: list[OnchainSample] = []
        o = step.onchain
        for i in np.nonzero(self.onchain_mask)[0].tolist():
            values: dict[str, Any] = {name: float(column[i]) for name, column in o.items()}
            onchain.append(OnchainSample(coin_id=coin_ids[i], at=at, **values))
        return market, onchain


class DemoSource:
    """The ``demo`` source: the simulator behind the :class:`ingest.source.Source` protocol."""

    name = "demo"

    def __init__(self, config: DemoConfig | None = None) -> None:
        self.config = config or DemoConfig()
        self.market: DemoMarket | None = None

    def _outcomes(self, batch: SnapshotBatch) -> list[VenueOutcome]:
        counts: dict[str, int] = dict.fromkeys(VENUE_IDS, 0)
        for s in batch.market:
            counts[s.venue] += 1
        return [VenueOutcome(venue, "ok", 0.0, counts[venue], 0) for venue in VENUE_IDS]

    async def backfill(self, end: datetime, hours: int) -> SnapshotBatch:
        end = end.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        origin = end - timedelta(hours=hours)
        self.market = DemoMarket(self.config, origin, warm_until=end)
        batch = SnapshotBatch(at=end, coins=list(self.market.coins))
        for h in range(1, hours + 1):
            market, onchain = self.market.advance(origin + timedelta(hours=h))
            batch.market.extend(market)
            batch.onchain.extend(onchain)
        batch.outcomes = self._outcomes(batch)
        return batch

    async def collect(self, at: datetime) -> SnapshotBatch:
        if self.market is None:
            self.market = DemoMarket(self.config, at - timedelta(hours=1), warm_until=at)
        market, onchain = self.market.advance(at)
        batch = SnapshotBatch(at=at, coins=list(self.market.coins), market=market, onchain=onchain)
        batch.outcomes = self._outcomes(batch)
        return batch

    async def aclose(self) -> None:
        return None
