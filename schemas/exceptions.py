"""The error raised when a message cannot be decoded into an event.

Every failure carries a stable machine `code` and a human-readable `message` naming
the offending field, ready for a dead letter's `error.code` / `error.message`
(CONTRACT §4). The codec raises only the codes in `ERROR_CODES`; other components
may raise their own (`key_mismatch`, `unknown_decision`, …).
"""

from __future__ import annotations

from typing import Final, Literal, get_args

__all__ = ["ERROR_CODES", "ErrorCode", "InvalidEvent"]

ErrorCode = Literal[
    "too_large",
    "empty_value",
    "empty_key",
    "not_utf8",
    "not_json",
    "not_object",
    "not_finite",
    "missing_field",
    "wrong_type",
    "out_of_range",
    "invalid_value",
]

ERROR_CODES: Final[tuple[ErrorCode, ...]] = get_args(ErrorCode)
"""Every code `schemas.decode` and `schemas.decode_key` can raise."""


class InvalidEvent(ValueError):
    """A message value or key that is not a valid event.

    >>> err = InvalidEvent("not_json", "expected a value at line 1 column 1")
    >>> err.code, str(err)
    ('not_json', 'not_json: expected a value at line 1 column 1')
    """

    code: str
    message: str

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"
