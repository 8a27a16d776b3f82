"""The audit record format of CONTRACT §3.8: its fields, its hash, and what makes one sound."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any, TypeGuard

import rfc8785

from ._canonical import canonical_json
from .exceptions import InvalidRecordError

GENESIS_HASH = "0" * 64
"""`prev_hash` of the first record of a partition (64 zeros)."""

KINDS = ("decision", "alert", "state_change", "override", "checkpoint", "config")
"""Every `kind` of audit record written: a decision with its request, an alert, a state
change (tripwire, router import), an operator override, a signed checkpoint, and the
configuration in force under a new `policy_version`."""

STR_FIELDS = ("event_id", "kind", "tenant", "ts", "policy_version")
FIELDS = ("event_id", "seq", "kind", "tenant", "ts", "policy_version", "record", "prev_hash", "hash")

_HEX64 = re.compile(r"[0-9a-f]{64}")


def is_hex64(value: object) -> TypeGuard[str]:
    """True for a lowercase hex SHA-256 digest (64 characters)."""
    return isinstance(value, str) and _HEX64.fullmatch(value) is not None


def digest(prev_hash: str, value: dict[str, Any]) -> str:
    """SHA-256 hex of `prev_hash` as ASCII followed by the JCS bytes of `value` (no checks)."""
    try:
        canonical = canonical_json(value)
    except rfc8785.CanonicalizationError as exc:
        raise InvalidRecordError(f"not canonical JSON: {exc}") from exc
    return hashlib.sha256(prev_hash.encode("ascii") + canonical).hexdigest()


def record_hash(value_without_hash: Mapping[str, Any]) -> str:
    """The `hash` of an audit record, given the record without its `hash` key.

    SHA-256 (hex) of `prev_hash` as ASCII bytes followed by the RFC 8785 canonical JSON
    of the whole value, `prev_hash` included: the rule of CONTRACT §3.8.

    >>> value = {"seq": 0, "kind": "checkpoint", "record": {}, "prev_hash": GENESIS_HASH}
    >>> canonical = b'{"kind":"checkpoint","prev_hash":"' + b"0" * 64 + b'","record":{},"seq":0}'
    >>> record_hash(value) == hashlib.sha256(b"0" * 64 + canonical).hexdigest()
    True

    Raises `InvalidRecordError` when the value holds `hash`, has no lowercase hex
    `prev_hash`, or is not JSON within the RFC 8785 domain.
    """
    if "hash" in value_without_hash:
        raise InvalidRecordError("the value to hash must not contain 'hash'")
    prev_hash = value_without_hash.get("prev_hash")
    if not is_hex64(prev_hash):
        raise InvalidRecordError("'prev_hash' must be 64 lowercase hex characters")
    return digest(prev_hash, dict(value_without_hash))


def record_problem(value: object) -> str | None:
    """Why `value` is not a sound audit record, or None when it is.

    Sound: a JSON object with every field of §3.8 of the right type, and a `hash` equal to
    `record_hash` of the rest. Extra fields are allowed; the hash covers them.
    """
    if not isinstance(value, Mapping):
        return "not a JSON object"
    for name in FIELDS:
        if name not in value:
            return f"field {name!r} is missing"
    for name in STR_FIELDS:
        if not isinstance(value[name], str):
            return f"field {name!r} is not a string"
    seq = value["seq"]
    if type(seq) is not int or seq < 0:
        return "field 'seq' is not a non-negative integer"
    if not isinstance(value["record"], Mapping):
        return "field 'record' is not an object"
    for name in ("prev_hash", "hash"):
        if not is_hex64(value[name]):
            return f"field {name!r} is not 64 lowercase hex characters"
    content = {key: item for key, item in value.items() if key != "hash"}
    try:
        actual = digest(value["prev_hash"], content)
    except InvalidRecordError as exc:
        return str(exc)
    if actual != value["hash"]:
        return "hash does not match content"
    return None
