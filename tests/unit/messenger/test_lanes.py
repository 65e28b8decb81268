"""The two receive lanes, sans-IO (chat/messenger/lanes.py)."""

from __future__ import annotations

from chat.messenger.lanes import Lanes


def test_contacts_first_in_arrival_order_and_the_strangers_lane_sheds_its_oldest() -> None:
    lanes: Lanes[str] = Lanes(strangers=2)
    assert lanes.put("s1", urgent=False) is None
    assert lanes.put("s2", urgent=False) is None
    assert lanes.put("c1", urgent=True) is None
    assert lanes.put("s3", urgent=False) == "s1"  # full: the oldest goes
    assert lanes.put("c2", urgent=True) is None
    assert lanes.waiting() == (2, 2)
    taken = []
    while (item := lanes.take()) is not None:
        taken.append(item)
    assert taken == [("c1", True), ("c2", True), ("s2", False), ("s3", False)]


def test_the_contacts_lane_is_bounded_too() -> None:
    lanes: Lanes[int] = Lanes(strangers=1, contacts=3)
    shed = [lanes.put(i, urgent=True) for i in range(5)]
    assert shed == [None, None, None, 0, 1] and lanes.shed_contacts == 2
