"""Node records: the public test vectors, our own records, and every way a record can be bad."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st
from multiaddr import Multiaddr

from chat.waku.enr import rlp
from chat.waku.enr.record import (
    MAX_RECORD_SIZE,
    BadSignature,
    Enr,
    EnrError,
    RecordTooLarge,
    keccak256,
)
from chat.waku.enr.waku_fields import (
    Capability,
    RelayShards,
    WakuPeer,
    decode_multiaddrs,
    decode_rs,
    decode_rsv,
    encode_multiaddrs,
    encode_shards,
    node_enr,
)

# EIP-778's example record: key below, seq 1, ip 127.0.0.1, udp 30303.
EIP778_KEY = bytes.fromhex("b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291")
EIP778_TEXT = (
    "enr:-IS4QHCYrYZbAKWCBRlAy5zzaDZXJBGkcnh4MHcBFZntXNFrdvJjX04jRzjzCBOonrkTfj499SZuOh8R33Ls"
    "8RRcy5wBgmlkgnY0gmlwhH8AAAGJc2VjcDI1NmsxoQPKY0yuDUmstAHYpMa2_oxVtw0RW_QAdpzBQA8yWM0xOIN1"
    "ZHCCdl8"
)
EIP778_PUBLIC_KEY = "03ca634cae0d49acb401d8a4c6b6fe8c55b70d115bf400769cc1400f3258cd3138"
# js-waku's test vectors (packages/enr/src/enr.spec.ts): a record with three `multiaddrs`
# entries (the "shared test vector"), and one with ip/tcp and its peer id.
JS_MULTIADDRS_TEXT = (
    "enr:-QEnuEBEAyErHEfhiQxAVQoWowGTCuEF9fKZtXSd7H_PymHFhGJA3rGAYDVSHKCyJDGRLBGsloNbS8AZF33IVue"
    "fjOO6BIJpZIJ2NIJpcIQS39tkim11bHRpYWRkcnO4lgAvNihub2RlLTAxLmRvLWFtczMud2FrdXYyLnRlc3Quc3Rhd"
    "HVzaW0ubmV0BgG73gMAODcxbm9kZS0wMS5hYy1jbi1ob25na29uZy1jLndha3V2Mi50ZXN0LnN0YXR1c2ltLm5ldAY"
    "Bu94DACm9A62t7AQL4Ef5ZYZosRpQTzFVAB8jGjf1TER2wH-0zBOe1-MDBNLeA4lzZWNwMjU2azGhAzfsxbxyCkgCq"
    "q8WwYsVWH7YkpMLnU2Bw5xJSimxKav-g3VkcIIjKA"
)
JS_TCP_TEXT = (
    "enr:-IS4QAmC_o1PMi5DbR4Bh4oHVyQunZblg4bTaottPtBodAhJZvxVlWW-4rXITPNg4mwJ8cW__D9FBDc9N4mdhy"
    "MqB-EBgmlkgnY0gmlwhIbRi9KJc2VjcDI1NmsxoQOevTdO6jvv3fRruxguKR-3Ge4bcFsLeAIWEDjrfaigNoN0Y3CC"
    "dl8"
)
SECRET = bytes(range(1, 33))


def test_the_eip778_vector_decodes_verifies_and_is_reproduced_byte_for_byte() -> None:
    enr = Enr.from_text(EIP778_TEXT)
    assert (enr.seq, enr.ip, enr.udp, enr.tcp) == (1, "127.0.0.1", 30303, None)
    assert enr.public_key.hex() == EIP778_PUBLIC_KEY
    assert enr.text == EIP778_TEXT
    # RFC 6979 signatures are deterministic: signing the same content gives the same record.
    again = Enr.sign(EIP778_KEY, 1, {"ip": bytes([127, 0, 0, 1]), "udp": (30303).to_bytes(2)})
    assert again.text == EIP778_TEXT


def test_js_waku_vectors_give_their_addresses_and_peer_id() -> None:
    peer = WakuPeer.from_text(JS_TCP_TEXT)
    assert str(peer.peer_id) == "16Uiu2HAmPLe7Mzm8TsYUubgCAW1aJoeFScxrLj8ppHFivPo97bUZ"
    assert [str(a) for a in peer.dial_addrs] == [
        "/ip4/134.209.139.210/tcp/30303/p2p/16Uiu2HAmPLe7Mzm8TsYUubgCAW1aJoeFScxrLj8ppHFivPo97bUZ"
    ]
    with_addrs = WakuPeer.from_text(JS_MULTIADDRS_TEXT)
    assert [str(a) for a in with_addrs.multiaddrs] == [
        "/dns4/node-01.do-ams3.wakuv2.test.statusim.net/tcp/443/wss",
        "/dns6/node-01.ac-cn-hongkong-c.wakuv2.test.statusim.net/tcp/443/wss",
        "/onion3/vww6ybal4bd7szmgncyruucpgfkqahzddi37ktceo3ah7ngmcopnpyyd:1234/wss",
    ]
    # The onion address has no host we can dial; the two DNS ones are kept.
    assert len(with_addrs.dial_addrs) == 2


def test_our_node_record_round_trips_with_every_waku_field() -> None:
    listen = [
        Multiaddr("/ip4/127.0.0.1/tcp/60000"),
        Multiaddr("/ip4/10.1.2.3/tcp/60000"),
        Multiaddr("/ip4/10.1.2.3/tcp/8000/ws"),
        Multiaddr("/ip4/127.0.0.1/tcp/8000/ws"),
    ]
    capabilities = Capability.RELAY | Capability.FILTER | Capability.LIGHTPUSH
    enr = node_enr(SECRET, 7, listen, capabilities, RelayShards(42, (1, 0)))
    peer = WakuPeer.decode(enr.raw)
    assert peer.enr.seq == 7
    assert peer.capabilities == capabilities
    assert peer.shards == RelayShards(42, (0, 1))
    assert (peer.enr.ip, peer.enr.tcp) == ("10.1.2.3", 60000)  # routable before loopback
    assert [str(a) for a in peer.multiaddrs] == ["/ip4/10.1.2.3/tcp/8000/ws"]
    suffix = f"/p2p/{peer.peer_id}"
    assert [str(a) for a in peer.dial_addrs] == [
        "/ip4/10.1.2.3/tcp/60000" + suffix,
        "/ip4/10.1.2.3/tcp/8000/ws" + suffix,
    ]
    assert peer.serves(Capability.FILTER) and not peer.serves(Capability.STORE)
    assert list(peer.enr.pairs) == sorted(peer.enr.pairs)


def test_a_record_too_full_for_its_addresses_leaves_the_last_ones_out() -> None:
    listen = [Multiaddr("/ip4/10.0.0.1/tcp/1")]
    listen += [Multiaddr(f"/dns4/{'x' * 40}{n}.example/tcp/443/wss") for n in range(6)]
    enr = node_enr(SECRET, 1, listen, Capability.RELAY, RelayShards(1, (0, 1)))
    peer = WakuPeer.decode(enr.raw)
    assert len(enr.raw) <= MAX_RECORD_SIZE
    assert 0 < len(peer.multiaddrs) < 6
    assert peer.multiaddrs == tuple(listen[1 : 1 + len(peer.multiaddrs)])


def test_rs_below_64_shards_rsv_from_64_with_the_implementations_bit_order() -> None:
    assert encode_shards(RelayShards(1, tuple(range(8)))) == (
        "rs",
        bytes.fromhex("00010800000001000200030004000500060007"),
    )
    key, value = encode_shards(RelayShards(16, tuple(range(64))))
    assert key == "rsv" and value[:2] == bytes.fromhex("0010") and len(value) == 130
    assert value[2:10] == b"\xff" * 8 and value[10:] == bytes(120)
    # shard 9 is bit 1 (least significant first) of the vector's second byte
    assert decode_rsv(bytes(2) + bytes([0, 0b10]) + bytes(126)).shards == (9,)
    assert decode_rs(bytes.fromhex("002a0200000001")) == RelayShards(42, (0, 1))


def test_multiaddrs_codec_round_trips() -> None:
    addrs = (Multiaddr("/dns4/a.example/tcp/443/wss"), Multiaddr("/ip4/1.2.3.4/tcp/8000/ws"))
    assert decode_multiaddrs(encode_multiaddrs(addrs)) == addrs


def _tampered(text: str, index: int) -> bytes:
    raw = bytearray(Enr.from_text(text).raw)
    raw[index] ^= 0x01
    return bytes(raw)


def _resigned(items: list[bytes], secret: bytes = SECRET) -> bytes:
    """A correctly signed record of exactly these content items (seq, k, v, ...)."""
    from coincurve import PrivateKey

    digest = keccak256(rlp.encode_list(items))
    signature = PrivateKey(secret).sign_recoverable(digest, hasher=None)[:64]
    return rlp.encode_list([rlp.encode_bytes(signature), *items])


def _content(pairs: list[tuple[bytes, bytes]], secret: bytes = SECRET) -> list[bytes]:
    from coincurve import PrivateKey

    public = PrivateKey(secret).public_key.format(compressed=True)
    base = dict([(b"id", b"v4"), (b"secp256k1", public), *pairs])
    items = [rlp.encode_uint(1)]
    for key in sorted(base):
        items += [rlp.encode_bytes(key), rlp.encode_bytes(base[key])]
    return items


@pytest.mark.parametrize(
    ("data", "error", "says"),
    [
        (_tampered(EIP778_TEXT, 80), BadSignature, "does not verify"),  # ip byte
        (_tampered(EIP778_TEXT, 10), BadSignature, "does not verify"),  # signature byte
        (b"\xc0" + bytes(MAX_RECORD_SIZE), RecordTooLarge, "over the 300-byte limit"),
        (b"", EnrError, "not a node record"),
        (b"\x83abc", EnrError, "not a list"),
        (rlp.encode_list([rlp.encode_bytes(b"sig")]), EnrError, "key/value pairs"),
        (Enr.from_text(EIP778_TEXT).raw + b"\x00", EnrError, "follow the list"),
        (Enr.from_text(EIP778_TEXT).raw[:-1], EnrError, "runs past the end"),
        (b"\xf8\x05" + bytes(5), EnrError, "long form"),
        (b"\xc2\x81\x05", EnrError, "encoded as itself"),
        (_resigned(_content([])[:1] + _content([])[3:5] + _content([])[1:3]), EnrError, "sorted"),
        (_resigned([rlp.encode_bytes(b"\x01" * 9), *_content([])[1:]]), EnrError, "over 8"),
        (_resigned(_content([(b"tcp", b"\x00\x01\x02")])), EnrError, "a port is 1 or 2"),
        (_resigned(_content([(b"ip", b"\x01\x02\x03")])), EnrError, "not 4"),
        (_resigned(_content([(b"waku2", b"\x01\x02")])), EnrError, "`waku2`"),
        (_resigned(_content([(b"rs", b"\x00\x01\x02\x00")])), EnrError, "`rs`"),
        (_resigned(_content([(b"rsv", b"\x00\x01\x02")])), EnrError, "`rsv`"),
        (_resigned(_content([(b"multiaddrs", b"\x00\x09abc")])), EnrError, "`multiaddrs`"),
        (_resigned(_content([(b"multiaddrs", b"\x00\x03\xff\xff\xff")])), EnrError, "multiaddr"),
        (_resigned(_content([(b"id", b"v5")])), EnrError, '"v4"'),
    ],
)
def test_malformed_records_raise_one_clear_error(
    data: bytes, error: type[EnrError], says: str
) -> None:
    with pytest.raises(error, match=says):
        WakuPeer.decode(data)


def test_text_form_errors_are_enr_errors() -> None:
    for text in ("enr-IS4", "enr:!!!!", "enr:" + "A" * 1000, EIP778_TEXT[:-3]):
        with pytest.raises(EnrError):
            Enr.from_text(text)


def test_a_record_that_does_not_fit_is_refused_when_signed() -> None:
    with pytest.raises(RecordTooLarge):
        Enr.sign(SECRET, 1, {"big": bytes(300)})


def test_the_text_form_has_no_padding() -> None:
    text = node_enr(SECRET, 3, [Multiaddr("/ip4/1.2.3.4/tcp/5")], Capability.RELAY, None).text
    assert "=" not in text
    body = text.removeprefix("enr:")
    assert Enr.decode(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))).text == text


@given(st.binary(max_size=400))
def test_any_bytes_decode_or_raise_enr_error(data: bytes) -> None:
    try:
        WakuPeer.decode(data)
    except EnrError:
        pass
