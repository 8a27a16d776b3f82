"""Pins the Faust internals `app.engine.faust_compat` relies on, so an upgrade that moves them fails here."""

from types import SimpleNamespace

import faust.streams


class _Event:  # Faust keeps a weak reference to the current event
    def __init__(self, message: SimpleNamespace) -> None:
        self.message = message

from resontinex.app.engine.faust_compat import event_context


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

    from resontinex.app.engine.faust_compat import use_fetch_max_wait

    use_fetch_max_wait(20)
    use_fetch_max_wait(20)  # wraps Faust's own method once, however often it is called
    original = AIOKafkaConsumerThread._create_worker_consumer.__wrapped__
    assert "fetch_max_wait_ms=1500" in inspect.getsource(original)  # what is replaced
    assert "fetch_max_wait_ms=self._fetch_max_wait_ms" in inspect.getsource(AIOKafkaConsumer.start)  # where it is read


# ------------------------------------------------------------------ app.engine.record_source


def _faust_app(name: str):
    import faust

    return faust.App(name, broker="kafka://127.0.0.1:1")  # no I/O until started


def test_the_listener_pauses_excluded_partitions_before_faust_sees_the_assignment():
    import asyncio

    from aiokafka import AIOKafkaConsumer, TopicPartition
    from faust.transport.drivers.aiokafka import ConsumerRebalanceListener

    from resontinex.app.engine.faust_compat import exclude_from_fetching, excluded_topics

    async def scenario():
        app = _faust_app("pin-exclude")
        exclude_from_fetching(app, ["hot"])
        exclude_from_fetching(app, ["hot"])  # wraps Faust's listener once, however often it is called
        assert excluded_topics(app) == {"hot"}
        real = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1")  # not started: pause/paused are local state
        hot0, hot1, cold = TopicPartition("hot", 0), TopicPartition("hot", 1), TopicPartition("cold", 0)
        real.assign([hot0, hot1, cold])
        seen = []

        async def thread_on_assigned(assigned, generation):
            seen.append((real.paused(), set(assigned), generation))

        thread = SimpleNamespace(app=app, on_partitions_assigned=thread_on_assigned,
                                 _ensure_consumer=lambda: SimpleNamespace(pause=real.pause,
                                                                          _coordinator=SimpleNamespace(generation=7)))
        await ConsumerRebalanceListener(thread).on_partitions_assigned({hot0, hot1, cold})
        return app, seen, (hot0, hot1, cold)

    app, seen, (hot0, hot1, cold) = asyncio.run(scenario())
    assert seen == [({hot0, hot1}, {hot0, hot1, cold}, 7)]  # paused before Faust's own callback runs
    assert app.consumer_generation_id == 7


def test_faust_hands_aiokafka_that_listener_and_never_pauses_or_resumes_aiokafka_itself():
    import inspect
    import re
    from pathlib import Path

    import faust
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    assert "consumer.RebalanceListener(self)" in inspect.getsource(AIOKafkaConsumerThread.__post_init__)
    assert "listener=self._rebalance_listener" in inspect.getsource(AIOKafkaConsumerThread.subscribe)
    calls = [m.group(0) for path in Path(faust.__file__).parent.rglob("*.py")
             for m in re.finditer(r"[\w.()]+\.(?:pause|resume)\(", path.read_text())]
    assert calls and all(c.endswith(("flow_control.pause(", "flow_control.resume(")) for c in calls), calls


def test_aiokafka_neither_fetches_nor_returns_a_paused_partition():
    import inspect

    from aiokafka.consumer.fetcher import Fetcher, FetchResult

    actions = inspect.getsource(Fetcher._get_actions_per_node)
    assert "elif tp_state.paused:" in actions and "fetchable[node_id].append" in actions
    assert "if tp_state.paused:" in inspect.getsource(FetchResult.check_assignment)


def test_the_livelock_check_skips_excluded_partitions():
    import inspect

    import pytest
    from faust.transport.consumer import Consumer
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
    from faust.types import TP

    from resontinex.app.engine.faust_compat import exclude_from_fetching

    app = _faust_app("pin-livelock")
    exclude_from_fetching(app, ["hot"])
    thread = SimpleNamespace(app=app)  # the real check would read its aiokafka consumer
    assert AIOKafkaConsumerThread.verify_event_path(thread, 0.0, TP("hot", 0)) is None
    with pytest.raises(AttributeError):
        AIOKafkaConsumerThread.verify_event_path(thread, 0.0, TP("cold", 0))  # Faust's own check
    assert "self.verify_event_path(now, tp)" in inspect.getsource(Consumer.verify_all_partitions_active)


def test_commits_go_through_faust_group_member():
    import asyncio
    import inspect

    from aiokafka.consumer.group_coordinator import GroupCoordinator
    from faust.transport.consumer import ThreadDelegateConsumer
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
    from faust.types import TP

    from resontinex.app.engine.faust_compat import commit_offsets

    got = []

    async def _commit(offsets):
        got.append(dict(offsets))
        return True

    app = SimpleNamespace(consumer=SimpleNamespace(_commit=_commit))
    assert asyncio.run(commit_offsets(app, {TP("hot", 1): 42})) is True
    assert got == [{TP("hot", 1): 42}]
    assert "self._thread.commit(offsets)" in inspect.getsource(ThreadDelegateConsumer._commit)
    assert "call_thread(self._commit, offsets)" in inspect.getsource(AIOKafkaConsumerThread.commit)
    thread_commit = inspect.getsource(AIOKafkaConsumerThread._commit)
    assert "if tp in self.assignment()" in thread_commit  # partitions no longer assigned are left out
    assert '"already rebalanced" in str(exc)' in thread_commit and "return False" in thread_commit
    request = inspect.getsource(GroupCoordinator._do_commit_offsets)
    assert "self.generation" in request and "self.member_id" in request  # stamped when sent


def test_recovery_pending_reads_the_signal_of_a_recovery_not_yet_begun():
    import asyncio
    import inspect

    from faust.app.base import App
    from faust.tables.recovery import Recovery

    from resontinex.app.engine.faust_compat import recovery_pending

    async def scenario():
        app = _faust_app("pin-recovery")
        before = recovery_pending(app)
        app.tables.recovery.signal_recovery_start.set()
        return before, recovery_pending(app)

    assert asyncio.run(scenario()) == (False, True)
    assert "self.signal_recovery_start.set()" in inspect.getsource(Recovery.on_rebalance)
    loop = inspect.getsource(Recovery._restart_recovery.fun)  # a mode ServiceTask
    assert loop.index("self.signal_recovery_start.clear()") < loop.index("self.on_recovery_completed")
    assert "on_rebalance_complete.send()" in inspect.getsource(Recovery.on_recovery_completed)
    assigned = inspect.getsource(App._on_partitions_assigned)  # the flag is set before our receiver runs
    assert assigned.index("self.tables.on_rebalance") < assigned.index("self.on_partitions_assigned.send")


def test_revocation_and_shutdown_signals_come_while_the_group_member_can_still_commit():
    import inspect

    from aiokafka.consumer.group_coordinator import GroupCoordinator
    from faust.app.base import App
    from faust.transport.drivers.aiokafka import ConsumerRebalanceListener

    rejoin = inspect.getsource(GroupCoordinator.ensure_active_group)
    assert rejoin.index("self._on_join_prepare(") < rejoin.index("self._do_rejoin_group(")  # old assignment kept
    prepare = inspect.getsource(GroupCoordinator._on_join_prepare)
    assert "listener.on_partitions_revoked(revoked)" in prepare
    assert "thread.on_partitions_revoked(" in inspect.getsource(ConsumerRebalanceListener.on_partitions_revoked)
    assert "self.on_partitions_revoked.send" in inspect.getsource(App._on_partitions_revoked)
    stop = inspect.getsource(App.on_stop)  # Service.stop runs on_stop before stopping the consumer service
    assert stop.index("self._stop_consumer()") < stop.index("self.on_before_shutdown.send()")


def test_the_app_stops_its_tables_in_an_instance_method_called_first_when_it_stops():
    import inspect

    from faust.app.base import App

    assert "await self.tables.stop()" in inspect.getsource(App._stop_consumer)  # what must come after our stop
    assert inspect.getsource(App.on_stop).index("await self._stop_consumer()") < \
        inspect.getsource(App.on_stop).index("self.on_before_shutdown")



def test_a_topic_without_acks_is_neither_tracked_nor_committed_by_faust_and_reread_from_the_commit():
    """The coordination agent commits its topic itself (`commit_offsets`): Faust skips (and
    acks) an event of an old generation, but acks of a topic without acks commit nothing,
    and after a rebalance the recovery seeks every partition to the committed offset."""
    import inspect

    from faust.streams import Stream
    from faust.tables.recovery import Recovery
    from faust.transport.consumer import Consumer

    assert "topic in acking_topics and not message.tracked" in inspect.getsource(Stream._py_aiter)
    assert "if self.app.topics.acks_enabled_for(message.topic):" in inspect.getsource(Consumer.ack)
    assert "consumer.perform_seek()" in inspect.getsource(Recovery._resume_streams)
    assert "await self.seek_to_committed()" in inspect.getsource(Consumer.perform_seek)


def test_faust_seeks_to_committed_offsets_after_it_signals_the_rebalance_complete_and_aiokafka_skips_no_commit():
    import inspect

    from aiokafka import AIOKafkaConsumer
    from faust.tables.recovery import Recovery
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    resume = inspect.getsource(Recovery._resume_streams)
    assert resume.index("on_rebalance_complete.send()") < resume.index("consumer.perform_seek()")
    assert "if offset and offset > 0:" in inspect.getsource(AIOKafkaConsumer.seek_to_committed)
    assert callable(AIOKafkaConsumerThread._ensure_consumer)  # the aiokafka consumer, in its own thread
    assert inspect.iscoroutinefunction(AIOKafkaConsumerThread.call_thread)  # mode's: runs a coroutine there


def test_the_fetch_loop_drops_a_record_below_the_read_offset_that_read_again_forgets():
    import inspect

    from faust.transport.consumer import Consumer

    drain = inspect.getsource(Consumer._drain_messages)
    assert "r_offset = get_read_offset(tp)" in drain and "offset >= r_offset" in drain
    assert "get_read_offset = self._read_offset.__getitem__" in drain  # the mapping read_again pops from
    getmany = inspect.getsource(Consumer.getmany)  # records fetched while the flow stops are dropped ...
    assert "getmany called while flow not active" in getmany and "await self.perform_seek()" in getmany
    seek = inspect.getsource(Consumer.perform_seek)  # ... and the seek back goes to commits only
    assert "await self.seek_to_committed()" in seek
