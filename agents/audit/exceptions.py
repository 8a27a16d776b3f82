"""Errors raised by the audit hash chain."""

from __future__ import annotations

__all__ = ["InvalidRecordError", "SigningKeyError"]


class InvalidRecordError(ValueError):
    """An audit entry cannot be sealed, or a record read back is not a sound audit record.

    Raised by `seal`/`seal_many` for an entry that is not JSON within the RFC 8785 domain
    (NaN or infinite floats, integers beyond ±(2**53 − 1), non-string keys, types other
    than dict/list/tuple/str/int/float/bool/None) or has a wrong field type, by
    `record_hash` for such a value, and by `head_after` for a record that is malformed or
    whose `hash` does not match its content. `verify` never raises it: it reports.
    """


class SigningKeyError(ValueError):
    """A checkpoint signing or verifying key cannot be read (the message never quotes the key)."""
