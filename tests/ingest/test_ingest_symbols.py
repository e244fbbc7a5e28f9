"""Multiplied contracts and canonical coin ids."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.symbols import canonical_id, parse_base, reference_prices, resolve

PREFIXES = {"1000": 1000, "10000": 10_000, "1000000": 1_000_000, "1M": 1_000_000, "k": 1000}
bases = st.from_regex(r"[A-Z][A-Z0-9]{1,9}", fullmatch=True)
prices = st.floats(min_value=1e-9, max_value=1e6, allow_nan=False)


@given(bases, st.sampled_from(sorted(PREFIXES)))
def test_prefix_is_split(base: str, prefix: str) -> None:
    parsed = parse_base(prefix + base)
    assert parsed is not None
    assert (parsed.base, parsed.multiplier) == (base if base != "XBT" else "BTC", PREFIXES[prefix])


@given(bases.filter(lambda b: not b.startswith(("1", "K"))))
def test_plain_ticker_has_multiplier_one(base: str) -> None:
    parsed = parse_base(base)
    assert parsed is not None and parsed.multiplier == 1
    assert canonical_id(parsed.base) == base.lower() or base == "XBT"


@given(bases, st.sampled_from(sorted(PREFIXES)), prices)
def test_price_confirms_the_multiplier(base: str, prefix: str, coin_price: float) -> None:
    parsed = parse_base(prefix + base)
    assert parsed is not None
    reference = {canonical_id(parsed.base): coin_price}
    multiplier = PREFIXES[prefix]
    assert resolve(parsed, coin_price * multiplier, reference) == (
        canonical_id(parsed.base),
        multiplier,
    )
    # a price that fits neither reading is ambiguous
    assert resolve(parsed, coin_price * multiplier * 50, reference) is None


def test_real_ticker_that_looks_multiplied() -> None:
    """1000SATS is a coin of its own: when venues list it plainly at its price, that wins."""
    parsed = parse_base("1000SATS")
    assert parsed is not None and (parsed.base, parsed.multiplier) == ("SATS", 1000)
    reference = {"1000sats": 0.0003, "sats": 2e-5}
    assert resolve(parsed, 0.0003, reference) == ("1000sats", 1)
    assert resolve(parsed, 0.02, reference) == ("sats", 1000)
    assert resolve(parsed, 0.0003, {}) == ("sats", 1000)  # nothing to check against: the prefix


@pytest.mark.parametrize(
    ("raw", "base", "multiplier"),
    [("1INCH", "1INCH", 1), ("XBT", "BTC", 1), ("kPEPE", "PEPE", 1000), ("KAVA", "KAVA", 1),
     ("1MBABYDOGE", "BABYDOGE", 1_000_000), ("1000000MOG", "MOG", 1_000_000)],
)  # fmt: skip
def test_known_names(raw: str, base: str, multiplier: int) -> None:
    parsed = parse_base(raw)
    assert parsed is not None and (parsed.base, parsed.multiplier) == (base, multiplier)


@pytest.mark.parametrize("raw", ["", "PEPE/USDT", "BTC-PERP", "x" * 31, "ÄBC"])
def test_unusable_names(raw: str) -> None:
    assert parse_base(raw) is None


def test_reference_prices_use_only_unmultiplied_contracts() -> None:
    pairs = [(parse_base("PEPE"), 2e-5), (parse_base("1000PEPE"), 0.02), (parse_base("PEPE"), 4e-5)]
    assert reference_prices((p, x) for p, x in pairs if p) == {"pepe": pytest.approx(3e-5)}
