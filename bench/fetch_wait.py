"""What-if for the latency figure: the project worker with Faust's consumer fetch wait changed.

    python -m bench.fetch_wait MS worker --bootstrap HOST:PORT --web-port PORT

faust-streaming 0.15.3 builds its consumer with a hard-coded `fetch_max_wait_ms=1500`
(faust/transport/drivers/aiokafka.py). Kafka answers a Fetch as soon as
`fetch_min_bytes` (1) are there, so on Kafka that wait only bounds an idle poll; the
embedded broker (Tansu) holds a Fetch that found nothing new until the wait expires,
even when records arrive meanwhile. This wrapper runs `app.cli` unchanged except that
every consumer Faust makes starts with MS as its fetch wait, whatever the project sets
(the value is forced in `start()`, after any setting), so the bench can show in one
run what the fetch wait costs. A measuring aid only: the project's code is not changed.
"""

from __future__ import annotations

import sys
import types


def patch_fetch_wait(ms: int) -> None:
    import aiokafka
    import faust.transport.drivers.aiokafka as driver

    class Consumer(aiokafka.AIOKafkaConsumer):
        async def start(self) -> None:
            self._fetch_max_wait_ms = ms  # AIOKafkaConsumer.start() builds its fetcher from it
            await super().start()

    class Proxy(types.ModuleType):
        def __getattr__(self, name: str):
            return getattr(aiokafka, name)

    proxy = Proxy("aiokafka")
    proxy.AIOKafkaConsumer = Consumer  # type: ignore[attr-defined]
    driver.aiokafka = proxy  # type: ignore[attr-defined]


def main(argv: list[str]) -> int:
    if len(argv) < 2 or not argv[0].isdigit():
        raise SystemExit(__doc__)
    patch_fetch_wait(int(argv[0]))
    from resontinex.app.cli import main as cli

    return cli(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
