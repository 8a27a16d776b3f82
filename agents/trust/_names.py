"""Tier and verb names, as they appear on the wire (CONTRACT section 5)."""

from __future__ import annotations

from types import MappingProxyType

EXECUTE, REVIEW, DEFER, ABORT = "execute", "review", "defer", "abort"

# Ordered from least to most restrictive, so a larger index is a stricter verb.
DECISIONS = (EXECUTE, REVIEW, DEFER, ABORT)

TIERS = ("block", "review", "monitor", "pass")

TIER_DECISIONS = MappingProxyType({"block": ABORT, "review": REVIEW, "monitor": EXECUTE, "pass": EXECUTE})
