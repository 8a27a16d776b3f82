"""RFC 8785 (JCS) canonical JSON, with a fast path that is byte-identical to `rfc8785`.

`rfc8785.dumps` is pure Python (~80 µs for a decision record here); sealing every
decision with it caps the gate near 12k records/s on one core. orjson with sorted keys
writes the same bytes as JCS for most values, and differs only in three places, which
are easy to see in its output:

* numbers: an integral float (`1.0`; JCS writes `1`), an exponent (`1e+16`; JCS writes
  `10000000000000000` below 1e21), an integer beyond 2^53 (JCS refuses it);
* key order: JCS sorts by UTF-16 code units, orjson by code points; they differ only
  for characters outside the Basic Multilingual Plane (4-byte UTF-8 sequences);
* NaN and ±Infinity, which orjson writes as null and JCS refuses.

Whenever orjson's output holds any of those (or something that looks like one inside a
string), the value goes through `rfc8785` instead. tests/agents/audit/test_canonical.py
checks the two byte for byte on arbitrary JSON values.

>>> canonical_json({"b": 1.5, "a": [1, "x"]})
b'{"a":[1,"x"],"b":1.5}'
>>> canonical_json({"a": 1.0})
b'{"a":1}'
"""

from __future__ import annotations

import math
import re
from typing import Any

import orjson
import rfc8785

_NOT_JCS = re.compile(rb"(?:^|[:,\[])-?\d+(?:\.0(?=[,}\]]|$)|(?:\.\d+)?e)|(?:^|[:,\[])-?\d{16}|[\xf0-\xf4]")


def canonical_json(value: Any) -> bytes:
    """The RFC 8785 canonical JSON of `value` (raises `rfc8785.CanonicalizationError`)."""
    try:
        fast = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        return rfc8785.dumps(value)
    # orjson writes NaN and ±Infinity as null, where rfc8785 refuses them.
    if _NOT_JCS.search(fast) is None and (b"null" not in fast or _finite(value)):
        return fast
    return rfc8785.dumps(value)


def _finite(value: Any) -> bool:
    kind = type(value)
    if kind is float:
        return math.isfinite(value)
    if kind is dict:
        return all(_finite(v) for v in value.values())
    if kind is list or kind is tuple:
        return all(_finite(v) for v in value)
    return True
