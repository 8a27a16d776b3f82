"""Shared strategies and configs for the trust gate tests."""

from __future__ import annotations

import math

from hypothesis import strategies as st

from resontinex.agents.trust import TrustConfig, config_from_mapping, default_config

# Values where rounding, clamping or a formula switch happens.
EDGES = [
    0.0, 1.0, 5e-324, 2.2250738585072014e-308, 1e-300, 1e-7,
    math.nextafter(1e-6, 0.0), 1e-6, math.nextafter(1e-6, 1.0),
    math.nextafter(1 - 1e-6, 0.0), 1 - 1e-6, math.nextafter(1 - 1e-6, 1.0),
    math.nextafter(0.3, 0.0), 0.3, math.nextafter(0.3, 1.0),
    math.nextafter(0.65, 0.0), 0.65, math.nextafter(0.65, 1.0),
    0.5, math.nextafter(0.5, 0.0), math.nextafter(0.5, 1.0),
    0.7, 0.72, math.nextafter(0.72, 1.0), 0.25, 0.75, math.nextafter(1.0, 0.0),
]

unit = st.one_of(st.floats(min_value=0.0, max_value=1.0), st.sampled_from(EDGES))


@st.composite
def configs(draw: st.DrawFn) -> TrustConfig:
    weights = draw(st.lists(st.integers(0, 1000), min_size=3, max_size=3).filter(any))
    tiers = sorted(draw(st.lists(st.floats(0.01, 0.99), min_size=3, max_size=3, unique=True)))
    return config_from_mapping(
        {
            "weights": dict(zip(("alignment_score", "epistemic_risk", "confidence_band"), weights)),
            "risk_tiers": {"block": tiers[0], "review": tiers[1], "monitor": tiers[2], "pass": 1.01},
            "trust_floor": draw(st.floats(0.0, 1.0)),
            "entropy_threshold": draw(st.floats(0.0, 1.0)),
        }
    )


any_config = st.one_of(st.just(default_config()), configs())


def alignment_only(**overrides: object) -> TrustConfig:
    """Weights 1/0/0: raw_score is sigmoid(logit(a)), i.e. a itself up to an ulp or two."""
    mapping = default_config().as_dict()
    mapping["weights"] = {"alignment_score": 1, "epistemic_risk": 0, "confidence_band": 0}
    mapping.update(overrides)
    return config_from_mapping(mapping)
