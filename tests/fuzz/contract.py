"""What a fuzz target is, and the helpers every target uses to assert its decoder's contract.

The contract (docs/fuzzing.md): on any input a decoder returns a value or raises the error
type it documents, and nothing else; it never hangs and never allocates without bound. A
target is a function of bytes that calls the decoder, lets exactly the documented errors
pass, and checks what came back (a round trip through the encoder where one exists). Any
other exception escapes the target, and libFuzzer reports it as a crash with the input.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from chat.waku.framing import FrameDecoder, FramingError, encode_frame


@dataclass(frozen=True)
class Target:
    name: str
    decoder: str
    """What it feeds, as docs/fuzzing.md names it (module and function)."""
    contract: str
    """The errors the decoder may raise, and what the target checks besides."""
    fuzz: Callable[[bytes], None]
    seeds: Callable[[], Iterable[bytes]]
    """Valid inputs made by the real encoders: where libFuzzer starts mutating."""
    max_len: int = 4096
    tokens: Sequence[bytes] = field(default=())
    """A libFuzzer dictionary: strings the decoder looks for."""
    weight: float = 1.0
    """Share of a campaign's inputs, relative to the other targets (slow targets get less)."""


class ContractBroken(AssertionError):
    """A decoder returned something it must not (a failed round trip, an unbounded value)."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise ContractBroken(message)


def round_trip(value: object, again: object) -> None:
    """`again` is `value` decoded from its own encoding: they must be equal."""
    if value != again:
        raise ContractBroken(f"round trip changed the value:\n  {value!r}\n  {again!r}")


MAX_RECORDS = 16
RECORD_LIMIT = 256 * 1024


def records(data: bytes, limit: int = MAX_RECORDS) -> list[bytes]:
    """Split an input into at most `limit` length-prefixed records (our own frame format),
    for targets that feed a sequence of messages; a malformed tail is dropped."""
    decoder = FrameDecoder(RECORD_LIMIT)
    try:
        return decoder.feed(data)[:limit]
    except FramingError:
        return []


def join_records(items: Iterable[bytes]) -> bytes:
    """The inverse of `records`, for seeds."""
    return b"".join(encode_frame(item) for item in items)


SCRATCH_ENV = "CHINWAG_FUZZ_SCRATCH"


def scratch_dir(name: str) -> Path:
    """A fresh directory for one target's files (archives, profiles, files to read back);
    under the campaign's scratch directory, which run.py removes when the target ends."""
    base = os.environ.get(SCRATCH_ENV) or tempfile.mkdtemp(prefix="chinwag-fuzz-")
    path = Path(base) / name
    path.mkdir(parents=True, exist_ok=True)
    return path


@cache
def peer_id(seed: int) -> str:
    """A real libp2p peer id (secp256k1), the same for the same seed."""
    from libp2p.peer.id import ID

    from chat.waku.host import node_key_from_secret

    return str(ID.from_pubkey(node_key_from_secret(bytes([seed]) * 32).public_key))
