"""The client's errors: every one is a `ClientError`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["ClientError", "InvalidRequest", "ResultTimeout", "Unreachable"]


class ClientError(Exception):
    """Base class of every error the client raises."""


class Unreachable(ClientError):
    """Kafka could not be reached at the bootstrap address."""


class InvalidRequest(ClientError, ValueError):
    """What was to be published does not pass its schema (CONTRACT §3): the workers would
    make it a dead letter. `code` and `message` are those of the dead letter."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


class ResultTimeout(ClientError, TimeoutError):
    """No answer within the time given to `request_ids`; `answered` holds the answers that
    came (by request id). The requests were published and stay on their topic: a worker
    still answers them (a repeated `event_id`, though, is dropped and never answered)."""

    def __init__(self, request_ids: list[str], timeout_s: float, answered: Mapping[str, Any] | None = None) -> None:
        shown = ", ".join(request_ids[:5]) + (f" and {len(request_ids) - 5} more" if len(request_ids) > 5 else "")
        super().__init__(f"no answer to {shown} within {timeout_s:g} s (is a worker of the group running?)")
        self.request_ids, self.timeout_s, self.answered = request_ids, timeout_s, dict(answered or {})
