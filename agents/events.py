"""Output events the cores share: ids derived from what they answer, and alerts (CONTRACT §3.7)."""

from __future__ import annotations

import hashlib
from typing import Any

__all__ = ["alert_event", "alert_id", "derived_id"]


def derived_id(prefix: str, *parts: str) -> str:
    """An output id derived from what it answers: the same input gives the same id again
    (after a redelivery), so consumers dedupe on it.

    >>> derived_id("d-", "acme", "r-1") == derived_id("d-", "acme", "r-1") != derived_id("d-", "acme", "r-2")
    True
    """
    return prefix + hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16).hexdigest()


def alert_id(source_id: str, kind: str) -> str:
    return derived_id("a-", source_id, kind)


def alert_event(*, id_source: str, tenant: str, kind: str, severity: str, message: str,
                details: dict[str, Any], source_event_id: str | None, ts: str) -> dict[str, Any]:
    """An `alerts` event (CONTRACT §3.7); its id is derived from `id_source` and `kind`, so a
    re-sent alert keeps its id.

    >>> a = alert_event(id_source="acme|day", kind="emergency_brake", tenant="acme", severity="critical",
    ...                 message="m", details={}, source_event_id="r-1", ts="2026-01-01T00:00:00.000Z")
    >>> a["event_id"] == alert_id("acme|day", "emergency_brake")
    True
    """
    return {
        "event_id": alert_id(id_source, kind),
        "schema_version": 1,
        "tenant": tenant,
        "kind": kind,
        "severity": severity,
        "message": message,
        "details": details,
        "source_event_id": source_event_id,
        "ts": ts,
    }
