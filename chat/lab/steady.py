"""What keeps a messenger-mode run repeatable although its messengers' keys are new each run:
trio's scheduler in a fixed order, and contact-request partitions fixed per client.

trio runs the tasks that became ready at one instant in a random order on purpose (it
reverses the batch half of the time, from an unseeded generator); the messengers have many
tasks ready at the same instants (a heal, a burst of answers), so their relative order, and
from it the order of database writes, sends and timers, changed from run to run. trio has a
switch for repeatable schedules (the one Hypothesis turns on: sort the batch by task creation,
then shuffle it with trio's generator); `steady_scheduling` turns it on with a "shuffle" that
keeps the sorted order (trio then runs the newest task first), so the order never depends on
how many batches ran before (which would let one extra task, anywhere, reorder everything
after it). (Under pytest, Hypothesis's trio plugin has already turned the switch on with an
unseeded shuffle: every batch fully shuffled, so an in-process run diverged even more.)

A contact request travels on one of CONTACT_REQUEST_PARTITIONS content topics chosen by the
recipient's chat key. With fresh random keys, which clients share a partition (and so see,
reject and budget each other's requests) changed from run to run; `fixed_partition_identity`
draws new Olm accounts until the key lands on the partition the client's index names.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator, MutableSequence
from typing import Any

import trio._core._run as trio_run

from chat.direct import CONTACT_REQUEST_PARTITIONS, contact_request_partition
from chat.identity import Identity
from chat.identity_store import save_identity
from storage.store import Store

MAX_IDENTITY_DRAWS = 10_000
"""Each draw lands on the wanted partition with probability 1/32; 10,000 never all miss."""


class _InOrder(random.Random):
    """trio's scheduler generator with a shuffle that keeps the order it is given."""

    def shuffle(self, x: MutableSequence[Any]) -> None:
        return None


@contextlib.contextmanager
def steady_scheduling() -> Iterator[None]:
    """While this block lasts, every trio.run in this process runs the tasks ready at one
    instant by creation, newest first (module state of trio; the lab runs one simulation at a
    time)."""
    names = ("_ALLOW_DETERMINISTIC_SCHEDULING", "_r")
    if not all(hasattr(trio_run, name) for name in names):
        raise RuntimeError(
            "this trio has no switch for repeatable scheduling; "
            "the lab's messenger mode cannot repeat its runs"
        )
    saved = [getattr(trio_run, name) for name in names]
    setattr(trio_run, names[0], True)
    setattr(trio_run, names[1], _InOrder(0))
    try:
        yield
    finally:
        for name, value in zip(names, saved, strict=True):
            setattr(trio_run, name, value)


def fixed_partition_identity(store: Store, index: int, now: float) -> Identity:
    """Give a new profile an identity whose contact-request partition is index mod the
    partition count (saved as its first identity; the messenger then loads it)."""
    wanted = index % CONTACT_REQUEST_PARTITIONS
    display_name = store.meta.display_name or "unnamed"
    for _ in range(MAX_IDENTITY_DRAWS):
        identity = Identity.create(display_name, now)
        if contact_request_partition(identity.chat_key) == wanted:
            save_identity(store, identity, int(now * 1000))
            return identity
    raise RuntimeError(f"no identity on contact-request partition {wanted}")
