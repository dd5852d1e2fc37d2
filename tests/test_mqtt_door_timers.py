"""The MQTT door's shared deadline timers (``DeadlineTimers``): order, cancellation, re-arming."""

from __future__ import annotations

import asyncio
from typing import cast

import pytest

from aws_iot_mock.doors.mqtt_door import DeadlineTimers, FlushScheduler, MqttDoorHandler

TIMEOUT = 5.0


class Armed:
    """A handler as the timers see it: records when its deadline was reached."""

    def __init__(self, name: str, timers: DeadlineTimers, fired: list[str]) -> None:
        self.name = name
        self.timers = timers
        self.fired = fired
        self.key: int | None = None
        self.rearm_once_at: float | None = None
        self.done = asyncio.Event()

    def arm(self, deadline: float) -> None:
        self.key = self.timers.add(cast(MqttDoorHandler, self), deadline)

    def cancel(self) -> None:
        assert self.key is not None
        self.timers.remove(cast(MqttDoorHandler, self), self.key)
        self.key = None

    def deadline_reached(self, key: int) -> None:
        if key != self.key:
            return
        self.key = None
        self.fired.append(self.name)
        if self.rearm_once_at is not None:
            deadline, self.rearm_once_at = self.rearm_once_at, None
            self.arm(deadline)
            return
        self.done.set()


async def test_deadlines_are_served_in_order_and_a_cancelled_one_never() -> None:
    loop = asyncio.get_running_loop()
    timers = DeadlineTimers()
    fired: list[str] = []
    first, cancelled, last = (Armed(name, timers, fired) for name in ("first", "gone", "last"))
    now = loop.time()
    last.arm(now + 0.3)
    cancelled.arm(now + 0.2)
    first.arm(now + 0.1)
    cancelled.cancel()

    await asyncio.wait_for(last.done.wait(), TIMEOUT)

    assert fired == ["first", "last"]
    assert loop.time() >= now + 0.3  # never early


async def test_a_handler_that_rearms_into_a_past_bucket_is_served_on_a_later_turn() -> None:
    # The connection's own clock may say "not yet" when its bucket fires; it arms again, and
    # the timers serve it again rather than looping in the same callback.
    loop = asyncio.get_running_loop()
    timers = DeadlineTimers()
    fired: list[str] = []
    handler = Armed("again", timers, fired)
    handler.rearm_once_at = loop.time() - 1.0
    handler.arm(loop.time() + 0.05)

    await asyncio.wait_for(handler.done.wait(), TIMEOUT)

    assert fired == ["again", "again"]


async def test_a_handler_cancelled_by_another_in_the_same_bucket_is_not_served() -> None:
    # A takeover served from one connection's deadline can close another connection due in
    # the same bucket: the closed one must not be served afterwards.
    loop = asyncio.get_running_loop()
    timers = DeadlineTimers()
    fired: list[str] = []
    one, other = Armed("one", timers, fired), Armed("other", timers, fired)
    witness = Armed("witness", timers, fired)

    def serve_and_cancel(me: Armed, peer: Armed) -> None:
        original = me.deadline_reached

        def reached(key: int) -> None:
            if key == me.key and peer.key is not None:
                peer.cancel()
            original(key)

        me.deadline_reached = reached  # type: ignore[method-assign]

    serve_and_cancel(one, other)
    serve_and_cancel(other, one)
    deadline = loop.time() + 0.05
    one.arm(deadline)
    other.arm(deadline)
    witness.arm(deadline + 0.2)

    await asyncio.wait_for(witness.done.wait(), TIMEOUT)

    assert sorted(fired) in (["one", "witness"], ["other", "witness"])


# -- FlushScheduler: marks made during a read are flushed at its end -----------------------------


class Flushable:
    """A handler as the flush scheduler sees it: counts its flushes."""

    def __init__(self) -> None:
        self.flush_pending = False
        self.flushes = 0

    def flush(self) -> None:
        self.flushes += 1


def test_marks_during_a_read_are_flushed_when_it_ends_without_a_scheduled_run() -> None:
    async def scenario() -> tuple[int, int, int]:
        scheduler = FlushScheduler()
        subscriber = Flushable()
        handler = cast(MqttDoorHandler, subscriber)
        loop = asyncio.get_running_loop()
        before = len(loop._ready)  # type: ignore[attr-defined]  # (the loop's queue)
        scheduler.read_then_flush(lambda _data: scheduler.mark(handler), b"x")
        scheduled = len(loop._ready) - before  # type: ignore[attr-defined]
        during_read = subscriber.flushes
        # Twin: a mark outside a read is flushed by a run at the end of the loop iteration.
        scheduler.mark(handler)
        assert subscriber.flushes == during_read
        await asyncio.sleep(0)
        return scheduled, during_read, subscriber.flushes

    assert asyncio.run(scenario()) == (0, 1, 2)


def test_marks_during_a_read_that_raises_are_still_flushed() -> None:
    async def scenario() -> int:
        scheduler = FlushScheduler()
        subscriber = Flushable()

        def read(_data: bytes) -> None:
            scheduler.mark(cast(MqttDoorHandler, subscriber))
            raise RuntimeError("the handler failed")

        with pytest.raises(RuntimeError):
            scheduler.read_then_flush(read, b"x")
        # Nothing is left marked: a later mark schedules its run again.
        scheduler.mark(cast(MqttDoorHandler, subscriber))
        await asyncio.sleep(0)
        return subscriber.flushes

    assert asyncio.run(scenario()) == 2
