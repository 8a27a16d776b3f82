"""Whether a consumer group has members, asked of the broker (DescribeGroups) periodically.

The gate sends a text-only request's text to the trajectory group and waits for its score;
with no member in that group nothing will ever answer, so it decides such a request at
once instead of after `fusion_timeout_s`. Until the first answer, and while the broker
cannot answer, the group is taken as present (the request waits, and the timeout still
bounds the wait).
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka.admin import AIOKafkaAdminClient
from resontinex.app.engine.security import client_options
from prometheus_client import Gauge

log = logging.getLogger(__name__)

REFRESH_S = 5.0


class GroupWatch:
    """The member count of consumer group `group_id` (None: not known), refreshed by `run()`
    and mirrored in `gauge` (-1: not known)."""

    def __init__(self, bootstrap: str, group_id: str, gauge: Gauge, *, refresh_s: float = REFRESH_S) -> None:
        self.group_id = group_id
        self.members: int | None = None
        self._bootstrap, self._gauge, self._refresh_s = bootstrap, gauge, refresh_s
        gauge.set(-1)

    @property
    def absent(self) -> bool:
        """True only when the broker said the group has no member."""
        return self.members == 0

    async def run(self) -> None:
        """Refresh the member count every `refresh_s` until cancelled (a broker that cannot
        be reached leaves it unknown and is tried again; it never stops the worker)."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap, **client_options(), client_id="resontinex-group-watch")
        try:
            while True:
                self._set(await self._count(admin))
                await asyncio.sleep(self._refresh_s)
        finally:
            await admin.close()

    async def _count(self, admin: AIOKafkaAdminClient) -> int | None:
        try:
            await admin.start()  # at once when started; a start that failed is tried again here
            (response,) = await admin.describe_consumer_groups([self.group_id])
            (group,) = response.to_object()["groups"]
            if group["error_code"]:
                raise RuntimeError(f"DescribeGroups error code {group['error_code']}")
            return len(group["members"])
        except Exception as exc:  # an answer missing now is no reason to stop the worker
            if self.members is not None:
                log.warning("consumer group %s: membership unknown (%s)", self.group_id, exc)
            return None

    def _set(self, members: int | None) -> None:
        if members is not None and members != self.members:
            log.info("consumer group %s has %d member(s)", self.group_id, members, extra={"group": self.group_id})
        self.members = members
        self._gauge.set(-1 if members is None else members)
