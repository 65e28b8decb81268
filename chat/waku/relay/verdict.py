"""What a relay validator says about a message, and the validator callback's type.

Validators run before a message is delivered or forwarded. Reject penalises the peer that
forwarded it (gossipsub P4) and the message is never forwarded; Ignore drops it quietly.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Final


@dataclass(frozen=True, slots=True)
class Accept:
    decoded: object = field(default=None, compare=False)
    """What the validator made of the data (the WakuMessage), handed on with the delivery so
    the app does not decode every message twice."""


@dataclass(frozen=True, slots=True)
class Reject:
    reason: str


@dataclass(frozen=True, slots=True)
class Ignore:
    reason: str = ""


ACCEPT: Final = Accept()
IGNORE: Final = Ignore()

ValidationResult = Accept | Reject | Ignore
Validator = Callable[[str, bytes, Hashable], ValidationResult]
"""(pubsub topic, encoded WakuMessage exactly as received, forwarding peer) -> verdict."""


def accept_all(topic: str, data: bytes, peer: Hashable) -> ValidationResult:
    return ACCEPT
