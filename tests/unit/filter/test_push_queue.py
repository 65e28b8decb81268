"""The filter server's push queues (chat/waku/filter/push_queue.py): bounded in bytes per
subscriber and in all, a frame shared by many subscribers counted once, the oldest dropped
first and every drop counted, frames being written still counted until done."""

from __future__ import annotations

import pytest

from chat.waku.filter.push_queue import MEMORY_FULL, QUEUE_FULL, PushLimits, PushQueues


def frame(tag: int, size: int = 100) -> bytes:
    return bytes([tag]) * size


def test_a_subscriber_over_its_bytes_loses_its_oldest_frames() -> None:
    queues = PushQueues(PushLimits(per_subscriber_bytes=300, total_bytes=10_000))
    stalled = queues.open("stalled")
    for tag in range(5):
        assert queues.offer([stalled], frame(tag)) == 1
    assert stalled.queued_bytes == 300 and stalled.queued_frames == 3
    assert queues.dropped == {QUEUE_FULL: 2}
    assert queues.total_bytes == 300  # what was dropped is let go
    assert [stalled.take(), stalled.take()] == [frame(2), None]  # one at a time
    stalled.done()
    assert stalled.take() == frame(3)


def test_a_subscriber_is_bounded_in_frames_too() -> None:
    queues = PushQueues(PushLimits(per_subscriber_frames=2))
    queue = queues.open("peer")
    for tag in range(4):
        queues.offer([queue], frame(tag, 1))
    assert queue.queued_frames == 2 and queues.dropped == {QUEUE_FULL: 2}


def test_a_frame_for_many_subscribers_is_held_once() -> None:
    queues = PushQueues(PushLimits(per_subscriber_bytes=1000, total_bytes=250))
    many = [queues.open(f"peer{n}") for n in range(50)]
    assert queues.offer(many, frame(1)) == 50
    assert queues.total_bytes == 100  # one frame, whatever the number of subscribers
    for queue in many[:49]:
        queue.take()
        queue.done()
    assert queues.total_bytes == 100  # one subscriber still waits for it
    many[49].close()
    assert queues.total_bytes == 0


def test_over_the_total_the_subscriber_holding_most_loses_its_oldest() -> None:
    queues = PushQueues(PushLimits(per_subscriber_bytes=1000, total_bytes=500))
    heavy, light = queues.open("heavy"), queues.open("light")
    for tag in range(4):
        queues.offer([heavy], frame(tag))
    queues.offer([light], frame(10))
    assert queues.total_bytes == 500
    assert queues.offer([light], frame(11)) == 1  # room made from the heaviest
    assert queues.dropped == {MEMORY_FULL: 1}
    assert heavy.take() == frame(1) and light.queued_frames == 2
    assert queues.total_bytes <= 500


def test_frames_being_written_count_and_a_new_frame_is_dropped_if_nothing_else_can_go() -> None:
    queues = PushQueues(PushLimits(per_subscriber_bytes=1000, total_bytes=200))
    first, second = queues.open("a"), queues.open("b")
    queues.offer([first], frame(1))
    queues.offer([second], frame(2))
    assert first.take() == frame(1) and second.take() == frame(2)  # both being written
    assert queues.offer([first], frame(3)) == 0  # nothing waiting could make room
    assert queues.dropped == {MEMORY_FULL: 1} and queues.total_bytes == 200
    first.done()
    assert queues.offer([first], frame(4)) == 1


def test_a_closed_queue_lets_go_of_its_frames_and_takes_no_more() -> None:
    queues = PushQueues()
    queue = queues.open("gone")
    queues.offer([queue], frame(1))
    queues.offer([queue], frame(2))
    assert queue.take() == frame(1)
    queue.close()
    assert queues.total_bytes == 100  # the one being written, until it is done
    queue.done()
    assert queues.total_bytes == 0
    assert queues.offer([queue], frame(3)) == 0 and not queues.dropped  # not a drop


def test_a_frame_larger_than_a_subscriber_may_hold_is_dropped() -> None:
    queues = PushQueues(PushLimits(per_subscriber_bytes=50))
    queue = queues.open("peer")
    assert queues.offer([queue], frame(1)) == 0 and queues.dropped == {QUEUE_FULL: 1}


@pytest.mark.parametrize("field", ["per_subscriber_bytes", "per_subscriber_frames", "total_bytes"])
def test_limits_must_be_positive(field: str) -> None:
    with pytest.raises(ValueError):
        PushLimits(**{field: 0})  # type: ignore[arg-type]
