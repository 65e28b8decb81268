"""mDNS discovery (chat/waku/discovery/dns.py, mdns.py): the DNS codec every packet on the
LAN's multicast group goes through, and the sans-IO core that turns answers into peers."""

from __future__ import annotations

import random
from collections.abc import Iterable

from chat.waku.discovery.mdns.core import MAX_ADDRS_PER_PEER, SERVICE_NAME, MdnsCore
from chat.waku.discovery.mdns.wire import (
    TYPE_PTR,
    DnsError,
    Message,
    Question,
    decode_message,
    encode_message,
    ptr_record,
    txt_record,
)
from fuzz.contract import Target, check, peer_id, round_trip


def fuzz_dns(data: bytes) -> None:
    try:
        message = decode_message(data)
    except DnsError:
        return
    for record in message.records():
        if record.rtype == 16:
            try:
                record.txt_strings()
            except DnsError:
                pass
    if any(r.rtype == TYPE_PTR for r in message.records()):
        return  # PTR data may point into the original packet: it does not re-encode alone
    try:
        again = decode_message(encode_message(message))
    except DnsError:
        return  # e.g. a label that was not UTF-8, longer once re-encoded: not ours to write
    # Names are dotted text, so a label holding a '.' comes back as two labels (and a
    # trailing one is dropped): compare from the first re-encoding on.
    round_trip(again, decode_message(encode_message(again)))


def _packets() -> list[bytes]:
    core = MdnsCore(peer_id(2), 42, random.Random(1))
    announcement = core.response(
        [f"/ip4/192.0.2.7/tcp/60000/p2p/{peer_id(2)}", "/ip4/10.0.0.2/tcp/1"]
    )
    assert announcement is not None
    untagged = encode_message(
        Message(
            flags=0x8400,
            answers=(ptr_record(SERVICE_NAME, f"peer.{SERVICE_NAME}", 120),),
            additionals=(
                txt_record(
                    f"peer.{SERVICE_NAME}",
                    [f"dnsaddr=/ip4/1.2.3.4/tcp/1/p2p/{peer_id(2)}".encode()],
                    120,
                ),
            ),
        )
    )
    return [
        core.query(),
        announcement,
        untagged,
        encode_message(Message(0, (Question("x.local", 1),))),
    ]


def fuzz_mdns(data: bytes) -> None:
    core = MdnsCore(peer_id(1), 42, random.Random(0), accept_untagged=bool(data[:1] == b"\x00"))
    answer, found = core.receive(data, 100.0)
    check(not (answer and found), "a query that also announced peers")
    for peer in found:
        check(peer.peer_id != peer_id(1), "discovered ourselves")
        check(0 < len(peer.addrs) <= MAX_ADDRS_PER_PEER, f"{len(peer.addrs)} addresses")


def _seeds() -> Iterable[bytes]:
    return _packets()


TARGETS = (
    Target(
        name="dns_message",
        decoder="chat.waku.discovery.mdns.wire.decode_message (+ Record.txt_strings)",
        contract="DnsError only; messages without PTR data round-trip",
        fuzz=fuzz_dns,
        seeds=_seeds,
        max_len=9000,
        tokens=(b"\x04_p2p\x04_udp\x05local\x00", b"dnsaddr=", b"waku-cluster="),
    ),
    Target(
        name="mdns_packet",
        decoder="chat.waku.discovery.mdns.core.MdnsCore.receive",
        contract="never raises; discovered peers are never ourselves and carry 1..16 addresses",
        fuzz=fuzz_mdns,
        seeds=_seeds,
        max_len=9000,
        tokens=(b"\x04_p2p\x04_udp\x05local\x00", b"dnsaddr=", b"waku-cluster=42", b"/p2p/"),
    ),
)
