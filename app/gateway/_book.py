"""The decisions the gateway has read, and the callers waiting for theirs.

One reader of the `decisions` topic: placed `lookback` records before each partition's
true end when it starts (so a decision made shortly before a restart is still found), it
keeps the newest `capacity` decisions, as their record bytes, by (tenant, request id).
A caller registers its wait before its request is published, so no decision can slip by.
Only the two fields it is matched by are parsed: what is answered is the record itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict

import orjson

from resontinex.app.engine.tail_reader import TailReader

__all__ = ["DecisionBook", "Key"]

log = logging.getLogger(__name__)

Key = tuple[str, str]
"""(tenant, request id): request ids are the producers' own, unique per tenant only."""


class DecisionBook(TailReader):
    """Decisions by (tenant, request id), newest `capacity` kept.

    >>> book = DecisionBook("k:9092", "decisions", capacity=2, lookback=0, max_bytes=1 << 20)
    >>> for i in range(3):
    ...     book.add(b'{"tenant": "acme", "request_id": "r%d", "verb": "execute"}' % i)
    >>> book.get(("acme", "r0")), book.get(("acme", "r2"))
    (None, b'{"tenant": "acme", "request_id": "r2", "verb": "execute"}')
    """

    def __init__(self, bootstrap: str, topic: str, *, capacity: int, lookback: int, max_bytes: int) -> None:
        super().__init__(bootstrap, topic, max_bytes=max_bytes, lookback=lookback)
        self.capacity = capacity
        self._kept: OrderedDict[Key, bytes] = OrderedDict()
        self._waiting: dict[Key, list[asyncio.Future[bytes]]] = {}

    def __len__(self) -> int:
        return len(self._kept)

    def stopped(self, error: BaseException | None) -> None:
        """Callers still waiting are cancelled when the book is stopped; while the reader is
        down (`alive` false, `/health` says so) they wait for their timeout's 202."""
        if error is None:
            for futures in self._waiting.values():
                for f in futures:
                    f.cancel()

    def get(self, key: Key) -> bytes | None:
        return self._kept.get(key)

    def wait(self, key: Key) -> asyncio.Future[bytes]:
        """A future of `key`'s decision (done already if it was read); `unwait` it when given up."""
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        if (known := self._kept.get(key)) is not None:
            future.set_result(known)
        else:
            self._waiting.setdefault(key, []).append(future)
        return future

    def unwait(self, key: Key, future: asyncio.Future[bytes]) -> None:
        futures = self._waiting.get(key, [])
        if future in futures:
            futures.remove(future)
        if not futures:
            self._waiting.pop(key, None)

    def on_record(self, value: bytes) -> None:
        self.add(value)

    def add(self, value: bytes) -> None:
        """Keep one decision record's bytes (anything unreadable is skipped)."""
        try:
            fields = orjson.loads(value)
            key = (fields["tenant"], fields["request_id"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.warning("unreadable record on %s", self.topic)
            return
        if not (isinstance(key[0], str) and isinstance(key[1], str)):
            return
        self._kept[key] = value
        self._kept.move_to_end(key)
        if len(self._kept) > self.capacity:
            self._kept.popitem(last=False)
        for future in self._waiting.pop(key, ()):
            if not future.done():
                future.set_result(value)
