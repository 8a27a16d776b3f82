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
