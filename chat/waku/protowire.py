"""What every protobuf codec of ours shares: bytes parsed into a message or the codec's own
error, and fields with presence read as a value or None.

Each decoder documents one error type and raises only that one on bad bytes (the fuzz targets
hold every decoder to it), so protobuf's DecodeError never escapes: `parse` and `require` take
the codec's error type. Fields declared `optional` in the .proto files have presence: absent
reads as None, not as the proto3 default. The rest of chat/ may use this module too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from google.protobuf.message import DecodeError, Message

MessageT = TypeVar("MessageT", bound=Message)
ErrorType = Callable[[str], Exception]
"""The codec's documented error, built from a sentence (an exception class fits)."""


def parse(message_type: type[MessageT], data: bytes, error: ErrorType, what: str = "") -> MessageT:
    """`data` as a `message_type`, or `error("not <what>: <protobuf's reason>")`; `what`
    names the message for a reader ("an SDS frame"), by default its protobuf name."""
    try:
        return message_type.FromString(data)
    except DecodeError as exc:
        raise error(f"not {what or 'a ' + message_type.DESCRIPTOR.name}: {exc}") from None


def optional(message: Message, field: str) -> Any:
    """The field's value when the sender wrote it, else None."""
    return getattr(message, field) if message.HasField(field) else None


def require(message: Message, field: str, error: ErrorType) -> None:
    """Raise `error` when the sender left out a field without which the message is
    meaningless (nwaku refuses those too)."""
    if not message.HasField(field):
        raise error(f"{message.DESCRIPTOR.name} has no {field}")
