"""The gateway's errors."""

from __future__ import annotations

from resontinex.app.exceptions import UsageError

__all__ = ["GatewayConfigError"]


class GatewayConfigError(UsageError):
    """`gateway.yaml` is not valid: the gateway refuses to start (exit 2), naming the key."""
