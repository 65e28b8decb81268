"""Which inbound connections the listener keeps (sans-IO, time injected): pending ones are
limited per source and in total, the idle evicted first and oldest first, a handshake in
progress is protected for its grace, silence is cut short while slow handshakes keep their
30 s, one source may hold only so many open connections, and a node full of open connections
makes room for a new one at the expense of the busiest source's longest idle one, never of a
connection it values. What a source is: an IPv4 address, an IPv6 /64, and each connection
through a trusted proxy on its own."""

from __future__ import annotations

import pytest

from chat.waku.inbound_limits import (
    SHEDS,
    InboundAdmission,
    InboundConnection,
    InboundLimits,
    Outcome,
    Phase,
)

LIMITS = InboundLimits(
    max_pending=4,
    max_pending_per_source=2,
    max_open_per_source=2,
    first_bytes_timeout=5.0,
    handshake_timeout=30.0,
    grace=1.0,
)


def accept(admission: InboundAdmission, source: str, now: float) -> InboundConnection:
    arrival = admission.arrive(source, now)
    assert arrival.connection is not None, arrival
    return arrival.connection


def test_a_new_connection_evicts_the_oldest_idle_one_of_its_source() -> None:
    admission = InboundAdmission(LIMITS)
    first = accept(admission, "10.0.0.1", 0.0)
    second = accept(admission, "10.0.0.1", 0.1)
    arrival = admission.arrive("10.0.0.1", 0.2)
    assert arrival.connection is not None
    assert arrival.evicted == (first,)
    assert first.done and not second.done
    assert admission.pending_from("10.0.0.1") == 2
    assert admission.counts[Outcome.EVICTED_SOURCE] == 1


def test_idle_connections_go_before_a_handshake_in_progress() -> None:
    admission = InboundAdmission(LIMITS)
    dialer = accept(admission, "10.0.0.1", 0.0)
    admission.first_bytes(dialer)  # a real dialer speaks at once
    idle = accept(admission, "10.0.0.1", 0.5)
    arrival = admission.arrive("10.0.0.1", 5.0)  # the dialer is older, but not idle
    assert arrival.evicted == (idle,)
    assert not dialer.done


def test_a_young_handshake_is_not_evicted_the_newcomer_is_refused() -> None:
    admission = InboundAdmission(LIMITS)
    for at in (0.0, 0.1):
        admission.first_bytes(accept(admission, "10.0.0.1", at))
    arrival = admission.arrive("10.0.0.1", 0.5)  # both within their 1 s grace
    assert arrival.connection is None and arrival.refused is Outcome.REFUSED_PENDING
    # Past its grace, a stalled handshake is fair game, oldest first.
    later = admission.arrive("10.0.0.1", 1.05)
    assert later.connection is not None and later.evicted[0].accepted_at == 0.0


def test_at_the_total_limit_the_source_holding_most_pays() -> None:
    admission = InboundAdmission(LIMITS)
    a1 = accept(admission, "10.0.0.1", 0.0)
    accept(admission, "10.0.0.1", 0.1)
    b1 = accept(admission, "10.0.0.2", 0.05)
    accept(admission, "10.0.0.3", 0.2)
    assert admission.pending == 4
    arrival = admission.arrive("10.0.0.4", 0.3)
    assert arrival.connection is not None
    assert arrival.evicted == (a1,)  # 10.0.0.1 holds two; its oldest idle goes
    assert not b1.done
    assert admission.counts[Outcome.EVICTED_TOTAL] == 1


def test_silence_is_cut_short_but_a_slow_handshake_keeps_its_time() -> None:
    admission = InboundAdmission(LIMITS)
    silent = accept(admission, "10.0.0.1", 0.0)
    slow = accept(admission, "10.0.0.2", 0.0)
    assert admission.deadline(silent) == 5.0
    admission.first_bytes(slow)
    assert admission.deadline(slow) == 30.0
    admission.timed_out(silent)
    admission.timed_out(slow)
    assert admission.counts[Outcome.FIRST_BYTES_TIMEOUT] == 1
    assert admission.counts[Outcome.HANDSHAKE_TIMEOUT] == 1
    assert admission.pending == 0


def test_open_connections_are_limited_per_source_and_never_evicted() -> None:
    admission = InboundAdmission(LIMITS)
    opened = []
    for at in (0.0, 0.1):
        connection = accept(admission, "10.0.0.1", at)
        admission.first_bytes(connection)
        assert admission.upgraded(connection, at)
        opened.append(connection)
    assert admission.deadline(opened[0]) is None and opened[0].phase is Phase.OPEN
    refused = admission.arrive("10.0.0.1", 1.0)
    assert refused.connection is None and refused.refused is Outcome.REFUSED_SOURCE_OPEN
    assert admission.arrive("10.0.0.2", 1.0).connection is not None  # others still come in
    admission.closed(opened[0])
    assert admission.arrive("10.0.0.1", 2.0).connection is not None


def test_an_evicted_connection_is_counted_once_whatever_happens_to_it_next() -> None:
    admission = InboundAdmission(LIMITS)
    first = accept(admission, "10.0.0.1", 0.0)
    accept(admission, "10.0.0.1", 0.1)
    admission.arrive("10.0.0.1", 0.2)
    admission.failed(first)  # its handshake then fails: not a second outcome
    admission.timed_out(first)
    assert not admission.upgraded(first, 0.3)
    assert sum(admission.counts[o] for o in SHEDS) == 1
    assert admission.counts[Outcome.FAILED] == 0


def test_a_failed_handshake_frees_its_slot() -> None:
    admission = InboundAdmission(LIMITS)
    connection = accept(admission, "10.0.0.1", 0.0)
    admission.failed(connection)
    assert admission.pending == 0 and admission.counts[Outcome.FAILED] == 1


@pytest.mark.parametrize("field", ["max_pending", "max_pending_per_source", "first_bytes_timeout"])
def test_limits_must_be_positive(field: str) -> None:
    with pytest.raises(ValueError):
        InboundLimits(**{field: 0})  # type: ignore[arg-type]


def open_connection(
    admission: InboundAdmission, address: str, now: float, peer: str | None = None
) -> InboundConnection:
    connection = accept(admission, address, now)
    admission.first_bytes(connection)
    assert admission.upgraded(connection, now, peer or f"{address}@{now}")
    return connection


def test_an_ipv6_source_is_its_64_so_its_other_addresses_share_its_limits() -> None:
    admission = InboundAdmission(LIMITS)
    accept(admission, "2001:db8:1:2::1", 0.0)
    accept(admission, "2001:db8:1:2:ffff:ffff:ffff:ffff", 0.1)
    # A third address of the same /64 is the same source, over its 2 pending: it evicts.
    arrival = admission.arrive("2001:db8:1:2:1234::9", 0.2)
    assert arrival.connection is not None and len(arrival.evicted) == 1
    assert admission.pending_from("2001:db8:1:2::42") == 2
    # The next /64 is another source.
    assert admission.arrive("2001:db8:1:3::1", 0.3).evicted == ()
    assert admission.pending_from("2001:db8:1:3::1") == 1


def test_an_ipv6_64_is_limited_in_open_connections_like_one_address() -> None:
    admission = InboundAdmission(LIMITS)
    open_connection(admission, "2001:db8::1", 0.0)
    open_connection(admission, "2001:db8::2", 0.1)
    refused = admission.arrive("2001:db8::3", 0.2)
    assert refused.refused is Outcome.REFUSED_SOURCE_OPEN
    assert admission.open_from("2001:db8::ffff") == 2


def test_an_ipv4_mapped_ipv6_address_counts_as_its_ipv4_address() -> None:
    admission = InboundAdmission(LIMITS)
    open_connection(admission, "192.0.2.7", 0.0)
    open_connection(admission, "::ffff:192.0.2.7", 0.1)
    assert admission.open_from("192.0.2.7") == 2
    assert admission.arrive("::ffff:c000:207", 0.2).refused is Outcome.REFUSED_SOURCE_OPEN
    assert admission.open_from("192.0.2.8") == 0  # IPv4 addresses stay one source each


@pytest.mark.parametrize(
    ("address", "source"),
    [
        ("10.1.2.3", "10.1.2.3"),
        ("::ffff:10.1.2.3", "10.1.2.3"),
        ("2001:db8:aaaa:bbbb:1:2:3:4", "2001:db8:aaaa:bbbb::/64"),
        ("fe80::1%eth0", "fe80::/64"),
        ("::1", "::/64"),
        ("unknown", "unknown"),
    ],
)
def test_what_source_an_address_counts_as(address: str, source: str) -> None:
    assert InboundAdmission(LIMITS).source_of(address) == source


def test_each_connection_through_a_trusted_proxy_is_a_source_of_its_own() -> None:
    limits = InboundLimits(
        max_pending=4, max_pending_per_source=2, max_open_per_source=2,
        trusted_proxies=("127.0.0.1", "10.9.0.0/16"),
    )  # fmt: skip
    admission = InboundAdmission(limits)
    for at in range(3):  # beyond the per-source limits of 2, from the proxy
        open_connection(admission, "127.0.0.1", float(at))
        open_connection(admission, "10.9.4.4", float(at))
    assert admission.open == 6 and admission.counts[Outcome.REFUSED_SOURCE_OPEN] == 0
    # The total still holds for them: 4 pending, the idle evicted first.
    for at in range(5):
        admission.arrive("127.0.0.1", 10.0 + at)
    assert admission.pending == 4 and admission.counts[Outcome.EVICTED_TOTAL] == 1
    # Any other address keeps its limits.
    open_connection(admission, "10.10.0.1", 20.0)
    open_connection(admission, "10.10.0.1", 20.1)
    assert admission.arrive("10.10.0.1", 20.2).refused is Outcome.REFUSED_SOURCE_OPEN


def test_a_bad_trusted_proxy_is_refused_when_the_limits_are_made() -> None:
    with pytest.raises(ValueError, match="not an IP address"):
        InboundLimits(trusted_proxies=("proxy.example.org",))


OPEN_LIMITS = InboundLimits(max_pending=64, max_pending_per_source=8, max_open_per_source=64)


def test_a_full_node_makes_room_with_the_busiest_source_s_longest_idle_connection() -> None:
    admission = InboundAdmission(OPEN_LIMITS)
    held = {
        address: [open_connection(admission, address, float(i)) for i in range(5)]
        for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3")
    }
    held["10.0.0.1"].append(open_connection(admission, "10.0.0.1", 5.0))  # the busiest: 6
    admission.active(held["10.0.0.1"][0], 9.0)  # a stream opened on its oldest one
    newcomer = open_connection(admission, "192.0.2.1", 10.0)
    victim = admission.make_room(newcomer)
    assert victim is held["10.0.0.1"][1]  # idle the longest of the busiest source
    assert victim.done and admission.open_from("10.0.0.1") == 5
    assert admission.counts[Outcome.EVICTED_OPEN] == 1
    # Filling again takes the busiest in turn, never the newcomer from a quiet address.
    for at in range(20):
        assert admission.make_room(open_connection(admission, "10.0.0.2", 11.0 + at)) is not None
    assert not newcomer.done
    assert admission.counts[Outcome.REFUSED_FULL] == 0


def test_connections_the_node_values_are_never_closed_to_make_room() -> None:
    admission = InboundAdmission(OPEN_LIMITS)
    mesh = [open_connection(admission, "10.0.0.1", float(i), peer=f"mesh{i}") for i in range(4)]
    other = open_connection(admission, "10.0.0.2", 5.0)

    def keep(connection: InboundConnection) -> bool:
        return str(connection.peer).startswith("mesh")

    newcomer = open_connection(admission, "10.0.0.3", 6.0)
    assert admission.make_room(newcomer, keep) is other  # not the busier, valued source
    assert not any(c.done for c in mesh)
    # When everything but the newcomer is valued, the newcomer is the one refused.
    assert admission.make_room(open_connection(admission, "10.0.0.4", 7.0), keep) is newcomer
    last = open_connection(admission, "10.0.0.5", 8.0, peer="mesh-to-be")
    admission.make_room(last, keep)  # takes the one from 10.0.0.4, idle longer
    assert admission.make_room(last, lambda connection: connection is not last) is last
    assert admission.counts[Outcome.REFUSED_FULL] == 1
    assert admission.make_room(last, lambda connection: True) is None  # nothing may go
