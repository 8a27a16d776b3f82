"""What-if for the latency figure: the project worker with Faust's consumer fetch wait changed.

    python -m bench.fetch_wait MS worker --bootstrap HOST:PORT --web-port PORT

faust-streaming 0.15.3 builds its consumer with a hard-coded `fetch_max_wait_ms=1500`
(faust/transport/drivers/aiokafka.py). Kafka answers a Fetch as soon as
`fetch_min_bytes` (1) are there, so on Kafka that wait only bounds an idle poll; the
embedded broker (Tansu) holds a Fetch that found nothing new until the wait expires,
even when records arrive meanwhile. This wrapper runs `app.cli` unchanged with that one
number replaced, so the bench can show how much of the request→decision latency is the
broker's fetch wait. A measuring aid only: the project's code is not changed by it.
"""

from __future__ import annotations

import sys
import types


def patch_fetch_wait(ms: int) -> None:
    import aiokafka
    import faust.transport.drivers.aiokafka as driver

    class Consumer(aiokafka.AIOKafkaConsumer):
        def __init__(self, *args, **kwargs) -> None:
            kwargs["fetch_max_wait_ms"] = ms
            super().__init__(*args, **kwargs)

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
    from app.cli import main as cli

    return cli(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
