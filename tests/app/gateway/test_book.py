"""The gateway's book of decisions: the newest kept, waiters answered once, nothing else."""

from __future__ import annotations

import asyncio

import orjson
from hypothesis import given
from hypothesis import strategies as st

from resontinex.app.gateway._book import DecisionBook


def book(capacity: int = 10) -> DecisionBook:
    return DecisionBook("127.0.0.1:1", "decisions", capacity=capacity, lookback=0, max_bytes=1 << 20)


def record(tenant: str, request_id: str, verb: str = "execute") -> bytes:
    return orjson.dumps({"tenant": tenant, "request_id": request_id, "verb": verb})


@given(st.lists(st.tuples(st.sampled_from(["acme", "globex"]), st.text(min_size=1, max_size=3)), max_size=40),
       st.integers(1, 8))
def test_the_newest_decisions_are_kept_by_tenant_and_request_id(keys: list[tuple[str, str]], capacity: int) -> None:
    b = book(capacity)
    for tenant, request_id in keys:
        b.add(record(tenant, request_id))
    newest = list(dict.fromkeys(reversed(keys)))[:capacity]
    assert len(b) == len(newest)
    assert all(b.get(k) == record(*k) for k in newest)


def test_a_waiter_gets_its_decision_and_another_tenants_same_id_does_not_answer_it() -> None:
    async def scenario() -> tuple[bytes, bool, bytes]:
        b = book()
        mine, known = b.wait(("acme", "r1")), None
        b.add(record("globex", "r1"))
        still_waiting = not mine.done()
        b.add(record("acme", "r1"))
        known = b.wait(("acme", "r1"))  # already read: done at once
        return await mine, still_waiting, known.result()

    got, still_waiting, known = asyncio.run(scenario())
    assert got == record("acme", "r1") and still_waiting and known == got


def test_a_waiter_given_up_is_forgotten_and_unreadable_records_are_skipped() -> None:
    async def scenario() -> tuple[int, int]:
        b = book()
        f = b.wait(("acme", "r1"))
        b.unwait(("acme", "r1"), f)
        for junk in (b"not json", b"[]", b'{"tenant": "acme"}', b'{"tenant": 1, "request_id": "r1"}'):
            b.add(junk)
        b.add(record("acme", "r1"))
        return len(b), len(b._waiting)

    assert asyncio.run(scenario()) == (1, 0)
