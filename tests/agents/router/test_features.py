from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from resontinex.agents.router import DIMENSION, FEATURE_NAMES, FeatureScales, features_by_provider, provider_features

from ._support import offer


def test_features_are_bias_price_latency_reputation_capacity() -> None:
    assert FEATURE_NAMES == ("bias", "price", "latency", "reputation", "capacity") and DIMENSION == 5
    assert provider_features(offer("a", price=5.0, latency=500.0, reputation=95.0, capacity=100.0),
                             FeatureScales()) == (1.0, 0.5, 0.5, 0.95, 0.5)


def test_zero_and_unreported_values() -> None:
    assert provider_features(offer("a", price=0.0, latency=0.0, reputation=0.0, capacity=None),
                             FeatureScales()) == (1.0, 0.0, 0.0, 0.0, 0.0)


def test_scales_are_configurable() -> None:
    assert provider_features(offer("a", price=1.0), FeatureScales(price_usd_per_hour=1.0))[1] == 0.5


@given(st.floats(0, 1e9), st.floats(0, 1e9), st.floats(0, 100), st.one_of(st.none(), st.floats(0, 1e9)))
def test_features_are_normalised_into_0_1(price: float, latency: float, rep: float, cap: float | None) -> None:
    x = provider_features(offer("a", price=price, latency=latency, reputation=rep, capacity=cap), FeatureScales())
    assert len(x) == DIMENSION and x[0] == 1.0
    assert all(0.0 <= v <= 1.0 for v in x)


@given(st.floats(0, 1e6), st.floats(0, 1e6))
def test_features_keep_the_order_of_prices(p1: float, p2: float) -> None:
    x1 = provider_features(offer("a", price=p1), FeatureScales())[1]
    x2 = provider_features(offer("a", price=p2), FeatureScales())[1]
    assert (p1 <= p2) <= (x1 <= x2)


def test_features_by_provider_keeps_the_first_offer_of_an_id() -> None:
    got = features_by_provider([offer("a", price=5.0), offer("a", price=0.0), offer("b")], FeatureScales())
    assert set(got) == {"a", "b"} and got["a"][1] == 0.5
