"""Pins the Faust internals `app.faust_compat` relies on, so an upgrade that moves them fails here."""

from types import SimpleNamespace

import faust.streams


class _Event:  # Faust keeps a weak reference to the current event
    def __init__(self, message: SimpleNamespace) -> None:
        self.message = message

from app.faust_compat import event_context


def test_event_context_is_what_tables_read_as_the_current_event():
    event = _Event(SimpleNamespace(partition=3, timestamp=120.0))
    assert faust.streams.current_event() is None
    with event_context(event):
        assert faust.streams.current_event() is event
    assert faust.streams.current_event() is None


def test_tables_take_the_changelog_partition_from_the_current_event():
    import inspect

    from faust.tables.base import Collection

    source = inspect.getsource(Collection.partition_for_key)
    assert "current_event()" in source and "event.message.partition" in source


def test_the_fetch_wait_reaches_the_consumer_faust_builds():
    import inspect

    from aiokafka import AIOKafkaConsumer
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    from app.faust_compat import use_fetch_max_wait

    use_fetch_max_wait(20)
    use_fetch_max_wait(20)  # wraps Faust's own method once, however often it is called
    original = AIOKafkaConsumerThread._create_worker_consumer.__wrapped__
    assert "fetch_max_wait_ms=1500" in inspect.getsource(original)  # what is replaced
    assert "fetch_max_wait_ms=self._fetch_max_wait_ms" in inspect.getsource(AIOKafkaConsumer.start)  # where it is read
