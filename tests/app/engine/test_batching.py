import asyncio

from resontinex.app.engine.batching import drain_in_batches


class _Event:
    def __init__(self, n: int, acked: list[int]) -> None:
        self.n, self._acked = n, acked

    def ack(self) -> None:
        self._acked.append(self.n)


class _Stream:
    def __init__(self, n: int, acked: list[int], gap_s: float = 0.0) -> None:
        self.n, self.acked, self.gap_s = n, acked, gap_s

    def noack(self) -> "_Stream":
        return self

    async def events(self):
        for i in range(self.n):
            await asyncio.sleep(self.gap_s)
            yield _Event(i, self.acked)
        await asyncio.sleep(0.2)  # let the last batch be handled before the stream ends


def _run(n: int, max_batch: int, handle_s: float = 0.0, gap_s: float = 0.0, linger_s: float = 0.005):
    acked: list[int] = []
    batches: list[list[int]] = []

    async def handle(batch):
        assert not any(e.n in acked for e in batch), "acked before it was handled"
        await asyncio.sleep(handle_s)
        batches.append([e.n for e in batch])

    asyncio.run(drain_in_batches(_Stream(n, acked, gap_s), handle, max_batch=max_batch, linger_s=linger_s, name="t"))
    return batches, acked


def test_every_event_is_handled_once_in_order_then_acked():
    batches, acked = _run(500, max_batch=64, handle_s=0.001)
    assert [n for b in batches for n in b] == list(range(500)) == acked


def test_batches_never_exceed_the_maximum_and_grow_under_load():
    batches, _ = _run(2000, max_batch=100, handle_s=0.01)
    assert max(len(b) for b in batches) <= 100
    assert len(batches) < 100  # not one event at a time


def test_a_lone_event_waits_about_the_linger_not_for_a_full_batch():
    async def main():
        acked: list[int] = []
        started = asyncio.get_running_loop().time()
        done: list[float] = []

        async def handle(batch):
            done.append(asyncio.get_running_loop().time() - started)

        await drain_in_batches(_Stream(1, acked), handle, max_batch=1000, linger_s=0.05, name="t")
        return done

    assert 0.04 <= asyncio.run(main())[0] < 0.15
