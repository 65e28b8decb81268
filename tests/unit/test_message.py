"""WakuMessage codec and every official hash vector from waku-wire.md §2.1."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chat.waku.message import (
    MessageError,
    MessageTooLarge,
    WakuMessage,
    message_hash,
)

DEFAULT_PUBSUB = "/waku/2/default-waku/proto"
DEFAULT_CONTENT = "/waku/2/default-content/proto"
PAYLOAD = bytes.fromhex("010203045445535405060708")
SECRET_META = bytes.fromhex("73757065722d736563726574")
META_64 = bytes(range(64))
TS = 0x175789BFA23F8400

VECTORS = [
    # rfc-index 14/message.md
    (DEFAULT_PUBSUB, PAYLOAD, DEFAULT_CONTENT, SECRET_META, TS,
     "64cce733fed134e83da02b02c6f689814872b1a0ac97ea56b76095c3c72bfe05"),
    (DEFAULT_PUBSUB, PAYLOAD, DEFAULT_CONTENT, META_64, TS,
     "7158b6498753313368b9af8f6e0a0a05104f68f972981da42a43bc53fb0c1b27"),
    (DEFAULT_PUBSUB, PAYLOAD, DEFAULT_CONTENT, b"", TS,
     "a2554498b31f5bcdfcbf7fa58ad1c2d45f0254f3f8110a85588ec3cf10720fd8"),
    (DEFAULT_PUBSUB, b"", DEFAULT_CONTENT, SECRET_META, TS,
     "483ea950cb63f9b9d6926b262bb36194d3f40a0463ce8446228350bd44e96de4"),
    # nwaku tests/waku_core/test_message_digest.nim
    ("/waku/2/rs/0/0", PAYLOAD, DEFAULT_CONTENT, b"", TS,
     "cccab07fed94181c83937c8ca8340c9108492b7ede354a6d95421ad34141fd37"),
    ("/waku/2/rs/0/0", PAYLOAD, DEFAULT_CONTENT, SECRET_META, TS,
     "b9b4852f9d8c489846e8bfc6c5ca6a1a8d460a40d28832a966e029eb39619199"),
    ("/waku/2/rs/0/0", PAYLOAD, DEFAULT_CONTENT, META_64, TS,
     "653460d04f66c5b11814d235152f4f246e6f03ef80a305a825913636fbafd0ba"),
    ("/waku/2/rs/0/0", b"", DEFAULT_CONTENT, SECRET_META, TS,
     "0f6448cc23b2db6c696aa6ab4b693eff4cf3549ff346fe1dbeb281697396a09f"),
    # go-waku waku/v2/protocol/pb/utils_test.go
    (DEFAULT_PUBSUB, PAYLOAD, DEFAULT_CONTENT, b"", 123456789123456789,
     "f0183c2e370e473ff471bbe1028d0d8a940949c02f3007a1ccd21fed356852a0"),
    (DEFAULT_PUBSUB, PAYLOAD, DEFAULT_CONTENT, SECRET_META, 123456789123456789,
     "f673cd2c9c973d685b52ca74c2559e001733a3a31a49ffc7b6e8713decba5a55"),
    (DEFAULT_PUBSUB, b"", DEFAULT_CONTENT, SECRET_META, 123456789123456789,
     "978ccc9a665029f9829d42d84e3a49ad3a4791cce53fb5a8b581ef43ad6b4d2f"),
    (DEFAULT_PUBSUB, b"", DEFAULT_CONTENT, SECRET_META, 0,
     "58e2fc032a82c4adeb967a8b87086d0d6fb304912f120d4404e6236add8f1f56"),
    ("test", b"Hello World", "Test", b"", 123456789123456789,
     "b659607f2aae18848dcaa7d51cb37e6cc6fc33402c704ff0c016337d83ad6150"),
]  # fmt: skip


@pytest.mark.parametrize(("pubsub", "payload", "content", "meta", "ts", "expected"), VECTORS)
def test_official_hash_vectors(
    pubsub: str, payload: bytes, content: str, meta: bytes, ts: int, expected: str
) -> None:
    msg = WakuMessage(payload=payload, content_topic=content, meta=meta, timestamp=ts, version=1)
    assert message_hash(pubsub, msg).hex() == expected
    # The hash survives an encode/decode round trip (it never depends on the encoding).
    assert WakuMessage.decode(msg.encode()).hash(pubsub).hex() == expected


def test_js_waku_divergence_on_absent_timestamp_is_not_ours() -> None:
    # js-waku omits the timestamp bytes; nwaku/go-waku (and we) append 8 zero bytes.
    msg = WakuMessage(payload=b"", content_topic=DEFAULT_CONTENT, meta=SECRET_META)
    js_only = "e1a9596237dbe2cc8aaf4b838c46a7052df6bc0d42ba214b998a8bfdbe8487d6"
    assert message_hash(DEFAULT_PUBSUB, msg).hex() != js_only


def test_encoding_matches_the_minimal_proto3_form() -> None:
    msg = WakuMessage(b"hello", "/waku/1/0x01020304/rfc26", timestamp=1700000000000000000)
    assert msg.encode().hex() == (
        "0a0568656c6c6f12182f77616b752f312f307830313032303330342f7266633236508080d0e2c6bfce972f"
    )


def test_nwaku_style_encoding_with_all_fields_decodes() -> None:
    nwaku = bytes.fromhex(
        "0a0568656c6c6f12182f77616b752f312f307830313032303330342f72666332361800508080d0e2c6bfce972f5a00aa0100f80100"
    )
    msg = WakuMessage.decode(nwaku)
    assert msg == WakuMessage(b"hello", "/waku/1/0x01020304/rfc26", timestamp=1700000000000000000)


def test_payload_and_content_topic_are_written_even_when_empty() -> None:
    assert WakuMessage(b"", "").encode() == bytes.fromhex("0a001200")


def test_unknown_fields_are_skipped() -> None:
    base = WakuMessage(b"x", "/a/1/b/c", timestamp=5).encode()
    unknown = bytes.fromhex("a006") + b"\x07" + bytes.fromhex("aa0603") + b"abc"  # fields 100, 101
    assert WakuMessage.decode(base + unknown) == WakuMessage.decode(base)


def test_oversized_and_malformed_messages_are_typed_errors() -> None:
    big = WakuMessage(b"x" * 200_000, "/a/1/b/c").encode()
    with pytest.raises(MessageTooLarge):
        WakuMessage.decode(big)
    assert WakuMessage.decode(big, max_size=1 << 20).payload == b"x" * 200_000
    with pytest.raises(MessageError):
        WakuMessage.decode(b"\x0a\xff")  # truncated length-delimited field
    with pytest.raises(MessageError):
        WakuMessage.decode(bytes.fromhex("5a41") + bytes(65))  # meta of 65 bytes
    with pytest.raises(MessageError):
        WakuMessage(b"x", "/a/1/b/c", meta=bytes(65)).encode()


messages = st.builds(
    WakuMessage,
    payload=st.binary(max_size=300),
    content_topic=st.text(max_size=40),
    version=st.integers(0, 2**32 - 1),
    timestamp=st.integers(-(2**63), 2**63 - 1),
    meta=st.binary(max_size=64),
    rate_limit_proof=st.binary(max_size=50),
    ephemeral=st.booleans(),
)


@given(messages)
def test_round_trip(msg: WakuMessage) -> None:
    assert WakuMessage.decode(msg.encode()) == msg


@given(st.binary(max_size=400))
def test_decoder_never_fails_with_anything_but_a_message_error(data: bytes) -> None:
    try:
        WakuMessage.decode(data)
    except MessageError:
        pass
